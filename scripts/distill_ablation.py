"""Distillation ablation: variants of the student's recipe against matched controls, over several seeds.

Stages (each skipped when done; training resumes): the ``ablation`` preset's data, dictionary and teacher
(through ``reproduce_table1.py --methods Teacher``), then for every seed and variant one student run and its
test, then the table (Markdown + CSV). Variants and controls: :data:`facesr_kd.ablation.VARIANTS`.

Usage::

    python scripts/distill_ablation.py --faces ../shared/data/faces/aligned/ffhq256 --aligned --random-vgg \\
        --seeds 0 1 --work-dir runs/ablation
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, 'scripts'))

from facesr_kd.ablation import VARIANTS, read_result, summarize, variant_options, write_ablation_table  # noqa: E402
from facesr_kd.recipes import PRESETS, describe_preset, write_yaml  # noqa: E402
from facesr_kd.table1 import BICUBIC, baseline_rows  # noqa: E402

import reproduce_table1  # noqa: E402


def main(args):
    preset_name = args.preset
    work_dir = os.path.abspath(args.work_dir or os.path.join('runs', f'{preset_name}'))
    base = [
        '--preset', preset_name, '--work-dir', work_dir, '--methods', 'Teacher',
        *(['--faces', args.faces] if args.faces else []), *(['--aligned'] if args.aligned else []),
        *(['--random-vgg'] if args.random_vgg else []),
        *(['--vgg-weights', args.vgg_weights] if args.vgg_weights else []),
        '--device', args.device,
    ]  # fmt: skip
    if not args.table_only:
        reproduce_table1.main(reproduce_table1.parse_args(base))
    preset = PRESETS[preset_name]
    data = {s: os.path.join(work_dir, 'data', s) for s in ('train', 'test')}
    data['name'] = os.path.basename(os.path.normpath(args.faces)) if args.faces else 'demo'
    vgg_file = reproduce_table1.random_vgg_file(work_dir) if args.random_vgg else args.vgg_weights
    if vgg_file is None:
        from facesr_kd.archs.vgg19 import default_vgg19_path

        vgg_file = default_vgg19_path()
    dict_path = os.path.join(work_dir, f'dictionary_k{preset["num_atoms"]}_{preset["size"]}.pth')
    runner = reproduce_table1.Runner(work_dir)
    opt_dir = os.path.join(work_dir, 'options')
    results = {v: {} for v in args.variants}
    bicubic = next(r for r in baseline_rows(os.path.join(data['test'], 'lr_x8'), os.path.join(data['test'], 'hr'))
                   if r['method'] == BICUBIC)  # fmt: skip
    teacher = read_teacher(work_dir)
    table = ''
    for seed in args.seeds:
        for variant in args.variants:
            train, test = variant_options(
                variant, seed, preset, work_dir, data, vgg_file, dict_path, args.device, lpips_random=args.random_vgg
            )
            if read_result(work_dir, variant, seed) is None and not args.table_only:
                ckpt = os.path.join(work_dir, 'experiments', train['name'], 'models', 'net_g_latest.pth')
                if not os.path.exists(ckpt):
                    opt_file = write_yaml(train, os.path.join(opt_dir, f'{train["name"]}.yml'))
                    runner.run(['-m', 'facesr_kd.train', '-opt', opt_file, '--auto_resume'], f'train {train["name"]}')
                opt_file = write_yaml(test, os.path.join(opt_dir, f'{test["name"]}.yml'))
                runner.run(['-m', 'facesr_kd.test', '-opt', opt_file], f'test {train["name"]}')
            result = read_result(work_dir, variant, seed)
            if result is None:
                continue
            results[variant][seed] = result
            # Write the table as results come in: a run cut short still leaves what it measured.
            table = write_ablation_table(
                summarize(results, bicubic), os.path.join(work_dir, 'ablation'), bicubic, teacher,
                note=f'{describe_preset(preset_name)} Seeds: {args.seeds}.', lpips_valid=not args.random_vgg,
            )  # fmt: skip
    print(table)
    print(f'table: {os.path.join(work_dir, "ablation")}.md / .csv, commands: {runner.log}')


def read_teacher(work_dir):
    import json

    path = os.path.join(work_dir, 'results', 'test_teacher_vggface2', 'metrics.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return next(iter(json.load(f).values()))['metrics']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument('--preset', choices=sorted(PRESETS), default='ablation')
    parser.add_argument('--faces', help='aligned face photos (default: the offline demo set)')
    parser.add_argument('--aligned', action='store_true', help='--faces are FFHQ-aligned crops')
    parser.add_argument('--work-dir', help='where everything goes (default: runs/<preset>)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument('--random-vgg', action='store_true', help='one fixed random VGG19 (labelled)')
    parser.add_argument('--vgg-weights', help='ImageNet vgg19-dcbb9e9d.pth')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--table-only', action='store_true', help='train nothing: tabulate the runs already done')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_args())
