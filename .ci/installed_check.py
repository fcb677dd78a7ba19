"""CI, after the suite: the wheel installed non-editable, used from a folder outside the checkout.

Runs every console script's ``--help``, imports the public APIs, copies the option files out with
``facesr-kd-options`` and validates each, and runs one tiny end-to-end command through the installed package.
Exits non-zero on the first failure. Run it from a folder that is not the checkout.
"""

import glob
import importlib
import os
import subprocess
import sys
import tempfile

SCRIPTS = [
    'facesr-kd-train',
    'facesr-kd-test',
    'facesr-kd-prepare',
    'facesr-kd-dictionary',
    'facesr-kd-infer',
    'facesr-kd-export-onnx',
    'facesr-kd-reproduce',
    'facesr-kd-table1',
    'facesr-kd-ablation',
    'facesr-kd-benchmark',
    'facesr-kd-benchmark-iter',
    'facesr-kd-plot-losses',
    'facesr-kd-options',
    'facesr-kd-gpu-check',
    'facesr-kd-publish',
    'facesr-kd-models',
    'facesr-kd-benchmark-photos',
]
APIS = {
    'facesr_kd.data.prepare': ['prepare_faces', 'load_records', 'check_options', 'run_errors', 'PreparationError'],
    'facesr_kd.dictionary': ['build_dictionary', 'list_faces'],
    'facesr_kd.inference': ['FaceSRRestorer', 'restore_paths', 'prepare_network'],
    'facesr_kd.export': ['export_onnx', 'export_checkpoint'],
    'facesr_kd.reproduce': ['reproduce_table1'],
    'facesr_kd.table1': ['make_table1', 'draw_figure'],
    'facesr_kd.ablation': ['run_ablation'],
    'facesr_kd.benchmarks.efficiency': ['benchmark'],
    'facesr_kd.recipes': ['copy_options', 'PRESETS', 'METHODS'],
    'facesr_kd.publish': ['publish_checkpoint'],
}


def run(cmd, **kwargs):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def main():
    import facesr_kd

    checkout = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
    where = os.path.dirname(os.path.abspath(facesr_kd.__file__))
    if where.startswith(checkout + os.sep):
        sys.exit(f'error: facesr_kd is imported from the checkout ({where}), not from the installed wheel')
    print(f'facesr_kd {facesr_kd.__version__} from {where}')
    for script in SCRIPTS:
        run([script, '--help'], stdout=subprocess.DEVNULL)
    for module, names in APIS.items():
        mod = importlib.import_module(module)
        missing = [n for n in names if not hasattr(mod, n)]
        if missing:
            sys.exit(f'error: {module} lacks {missing}')
    with tempfile.TemporaryDirectory() as work:
        run(['facesr-kd-options', 'copy', os.path.join(work, 'options')])
        from facesr_kd.recipes import load_yaml
        from facesr_kd.utils.options import check_options

        files = sorted(glob.glob(os.path.join(work, 'options', '**', '*.yml'), recursive=True))
        if len(files) < 20:
            sys.exit(f'error: only {len(files)} option files were copied out')
        for path in files:
            opt = load_yaml(path)
            opt.setdefault('is_train', 'train' in opt)
            check_options(opt, path, check_paths=False)
        print(f'{len(files)} option files copied out and valid')
        # One tiny end-to-end run: the offline demo faces, data, dictionary, one training stage, its test, table.
        run(
            ['facesr-kd-reproduce', '--preset', 'smoke', '--iters', '2', '--methods', 'Student w/o KD',
             '--random-vgg', '--workers', '1', '--work-dir', os.path.join(work, 'run')],
            cwd=work,
        )  # fmt: skip
        table = os.path.join(work, 'run', 'table1.md')
        with open(table) as f:
            text = f.read()
        if 'Bicubic' not in text or 'Student w/o KD' not in text:
            sys.exit(f'error: {table} lacks the bicubic or the trained row:\n{text}')
        restore_with_the_zoo(checkout, work)
    print('installed package: OK')


def restore_with_the_zoo(checkout, work):
    """``facesr-kd-infer`` with no --model on a staged photo, from ``work`` (outside the checkout): the zoo loads from
    the installed wheel. Skipped, with a printed line, while the zoo ships no model."""
    from facesr_kd.zoo import PACKAGE_ZOO, list_models

    models = list_models(PACKAGE_ZOO)
    if not models:
        print(f'skip: the installed zoo ({PACKAGE_ZOO}) has no model; facesr-kd-infer without --model not run')
        return
    data = os.path.join(checkout, '..', 'shared', 'data')
    photo = os.path.join(data, 'faces', 'whole', 'facenet-pytorch_multiface.jpg')  # six faces the zoo restores
    weights = os.path.join(data, 'weights', 'facexlib')
    if not os.path.isfile(photo):
        sys.exit(f'error: {photo} is missing: the staged photos are needed for the zoo check')
    out = os.path.join(work, 'zoo_out')
    run(['facesr-kd-infer', '-i', photo, '-o', out, '--det-model', 'retinaface_mobile0.25', '--model-root', weights,
         '--offline', '--device', 'cpu'], cwd=work)  # fmt: skip
    if not os.listdir(os.path.join(out, 'restored_imgs')) or not os.listdir(os.path.join(out, 'restored_faces')):
        sys.exit(f'error: facesr-kd-infer with the zoo ({[m.name for m in models]}) restored no face in {out}')
    print(f'zoo ({", ".join(m.name for m in models)}): a staged photo restored with no --model')


if __name__ == '__main__':
    main()
