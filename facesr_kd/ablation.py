"""The distillation ablation: variants of the student's recipe on one teacher, data set and iteration budget.

Every variant is a shipped recipe (``Student w/o KD``, ``Student``, ``Student (KD+)``) with a few options
changed; each is compared with its **matched control**, the student without KD from the same initialisation
(random, or the trained teacher with its dictionary path dropped) for the same iterations and seed: only the
difference to that control is the distillation's. ``facesr-kd-ablation`` (:func:`run_ablation`) is the CLI.
"""

import copy
import csv
import json
import math
import os
import statistics

from facesr_kd.recipes import (
    PRESETS,
    describe_preset,
    latest_checkpoint,
    make_test_options,
    make_train_options,
    write_yaml,
)
from facesr_kd.reproduce import Runner, random_vgg_file, reproduce_table1
from facesr_kd.table1 import BICUBIC, baseline_rows

# name -> base recipe (a row of recipes.METHODS), initialisation, `train: distill:` overrides, region D, text, and
# the adversarial weight when it differs from the recipe's (0: no adversarial term).
VARIANTS = {
    'nokd': ('Student w/o KD', 'random', None, False, 'student without KD (control)', None),
    'paper': ('Student', 'random', {}, False, "the paper's adversarial feature KD", None),
    'paper_lo': (
        'Student',
        'random',
        {},
        False,
        "the paper's adversarial feature KD with lambda_adv 1e-3 instead of 1e-2",
        1e-3,
    ),
    'paper_ramp': (
        'Student',
        'random',
        {'gan_ramp_iters': 100},
        False,
        "the paper's adversarial feature KD, lambda_adv ramped up from 0 over the first 100 iterations",
        None,
    ),
    'paper_delay': (
        'Student',
        'random',
        {'gan_start_iters': 100},
        False,
        "the paper's adversarial feature KD, switched on after 100 iterations (lambda_adv = 0 before)",
        None,
    ),
    'paper_delay_lo': (
        'Student',
        'random',
        {'gan_start_iters': 100},
        False,
        "the paper's adversarial feature KD with lambda_adv 1e-3, switched on after 100 iterations",
        1e-3,
    ),
    'paper_lo4': (
        'Student',
        'random',
        {},
        False,
        "the paper's adversarial feature KD with lambda_adv 1e-4 instead of 1e-2",
        1e-4,
    ),
    'nokd_t': ('Student w/o KD', 'teacher', None, False, 'student without KD from the teacher (control)', None),
    'paper_t': ('Student', 'teacher', {}, False, "the paper's KD, student from the teacher", None),
    'norm_t': (
        'Student',
        'teacher',
        {'feat_norm': 'self', 'adapter': 'identity', 'gan_ramp_iters': -1},
        False,
        'KD with F standardised per channel before D, identity adapter, lambda_adv ramp',
        None,
    ),
    'fm_t': (
        'Student',
        'teacher',
        {'feat_match_weight': 1e-2, 'output_weight': 0.5},
        False,
        'feature matching and output distillation, no adversarial term',
        0.0,
    ),
    'fm': (
        'Student',
        'random',
        {'feat_match_weight': 1e-2, 'output_weight': 0.5},
        False,
        'feature matching and output distillation, no adversarial term, random init',
        0.0,
    ),
    'out': (
        'Student',
        'random',
        {'output_weight': 1.0},
        False,
        'output distillation only (‖SR_S − SR_T‖² beside the pixel and perceptual losses), no adversarial term',
        0.0,
    ),
    'out_hi': (
        'Student',
        'random',
        {'output_weight': 4.0},
        False,
        'strong output distillation (weight 4: 80% of the L2 target is SR_T), no adversarial term',
        0.0,
    ),
    'hint_out_hi': (
        'Student',
        'random',
        {'hint_weight': 1e-2, 'feat_match_weight': 1e-2, 'feat_norm': 'teacher', 'output_weight': 4.0},
        False,
        'decoder hints, standardised feature matching and strong output distillation (weight 4), no adversarial term',
        0.0,
    ),
    'out_t': (
        'Student',
        'teacher',
        {'output_weight': 1.0},
        False,
        'output distillation only, student from the teacher',
        0.0,
    ),
    'out_hi_t': (
        'Student',
        'teacher',
        {'output_weight': 4.0},
        False,
        'strong output distillation (weight 4), student from the teacher',
        0.0,
    ),
    'fm_hi': (
        'Student',
        'random',
        {'feat_match_weight': 1.0, 'output_weight': 1.0},
        False,
        'strong feature matching and output distillation, no adversarial term, random init',
        0.0,
    ),
    'hint': (
        'Student',
        'random',
        {'hint_weight': 1e-2},
        False,
        "decoder hints (every up-block regressed on the teacher's, standardised), no adversarial term, random init",
        0.0,
    ),
    'hint_hi': (
        'Student',
        'random',
        {'hint_weight': 1e-1},
        False,
        'strong decoder hints (weight 0.1), no adversarial term, random init',
        0.0,
    ),
    'hint_fm': (
        'Student',
        'random',
        {'hint_weight': 1e-2, 'feat_match_weight': 1e-2, 'feat_norm': 'teacher', 'output_weight': 0.5},
        False,
        'decoder hints, standardised feature matching and output distillation, no adversarial term, random init',
        0.0,
    ),
    'hints': (
        'Student (hints)',
        'random',
        {},
        False,
        'Student (hints): options/distill_hint_vggface2.yml (hints, feature matching, output distillation; no D)',
        None,
    ),
    'outkd': (
        'Student (output KD)',
        'random',
        {},
        False,
        'Student (output KD): options/distill_output_vggface2.yml (output distillation at weight 4; no D)',
        None,
    ),
    'region_t': (
        'Student',
        'teacher',
        {'feat_norm': 'self', 'region_size': 16},
        True,
        'KD with standardised F plus component-region discriminators',
        None,
    ),
    'plus_t': ('Student (KD+)', 'teacher', {}, False, 'KD+ (options/distill_plus_vggface2.yml)', None),
}
CONTROLS = {'random': 'nokd', 'teacher': 'nokd_t'}
METRICS = ('psnr', 'ssim', 'psnr_y', 'ssim_y', 'lpips')


def experiment_name(variant, seed):
    return f'ablation_{variant}_seed{seed}'


def variant_options(variant, seed, preset, work_dir, data, vgg_file, dict_path, device, lpips_random):
    """The train and test option dicts of one variant and seed.

    Returns:
        tuple[dict, dict]: Training options (experiment :func:`experiment_name`) and test options reading its
        final checkpoint.
    """
    if variant not in VARIANTS:
        raise ValueError(f'unknown ablation variant {variant!r}; choose from {sorted(VARIANTS)}')
    base, init, distill, region, _, gan_weight = VARIANTS[variant]
    name = experiment_name(variant, seed)
    train = make_train_options(base, preset, work_dir, data, vgg_file, dict_path, device)
    train.update(name=name, manual_seed=seed)
    if init == 'teacher':
        train['path']['pretrain_network_g'] = latest_checkpoint(work_dir, 'Teacher')
        train['path']['param_key_g'] = 'params' if preset.get('ema_decay', 1) == 0 else 'params_ema'
    else:
        train['path']['pretrain_network_g'] = None
    if distill:
        merged = {**(train['train'].get('distill') or {}), **distill}
        if merged.get('gan_ramp_iters') == -1:
            merged['gan_ramp_iters'] = max(1, train['train']['total_iter'] // 4)
        train['train']['distill'] = merged
    if gan_weight is not None:
        train['train']['gan_opt']['loss_weight'] = gan_weight
    if region:
        d_region = copy.deepcopy(train['network_d'])
        d_region['num_layers'] = 3
        train['network_d_region'] = d_region
    test = make_test_options(base, preset, work_dir, data, vgg_file, device, lpips_random)
    test['name'] = f'test_{name}'
    test['path']['pretrain_network_g'] = os.path.join(work_dir, 'experiments', name, 'models', 'net_g_latest.pth')
    return train, test


def read_result(work_dir, variant, seed):
    """The metric averages of one finished test run, or None when it has not run."""
    path = os.path.join(work_dir, 'results', f'test_{experiment_name(variant, seed)}', 'metrics.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    return next(iter(summary.values()))['metrics']


def summarize(results, bicubic=None):
    """One row per variant: mean over seeds, seed-to-seed spread, difference to its matched control and bicubic.

    Args:
        results (dict[str, dict[int, dict]]): variant -> seed -> metrics (from :func:`read_result`).
        bicubic (dict | None): The bicubic row's metrics (``psnr``, ``ssim``...).

    Returns:
        list[dict]: Rows with ``variant``, ``init``, ``seeds``, ``<metric>`` means, ``psnr_seeds`` (per seed),
        ``psnr_spread`` (max - min over seeds), ``d_psnr_control``, ``d_ssim_control`` (means of the per-seed
        differences to the matched control), ``control_spread`` and ``d_psnr_bicubic``.
    """
    rows = []
    for variant, per_seed in results.items():
        if not per_seed:
            continue
        _, init, _, _, text, _ = VARIANTS[variant]
        seeds = sorted(per_seed)
        row = {'variant': variant, 'description': text, 'init': init, 'seeds': seeds}
        for m in METRICS:
            values = [per_seed[s].get(m, math.nan) for s in seeds]
            row[m] = statistics.fmean(values)
        psnrs = [per_seed[s]['psnr'] for s in seeds]
        row['psnr_seeds'] = psnrs
        row['psnr_spread'] = max(psnrs) - min(psnrs)
        control = results.get(CONTROLS[init], {})
        shared = [s for s in seeds if s in control]
        if shared and variant != CONTROLS[init]:
            row['d_psnr_control'] = statistics.fmean(per_seed[s]['psnr'] - control[s]['psnr'] for s in shared)
            row['d_ssim_control'] = statistics.fmean(per_seed[s]['ssim'] - control[s]['ssim'] for s in shared)
            cps = [control[s]['psnr'] for s in shared]
            row['control_spread'] = max(cps) - min(cps)
        else:
            row['d_psnr_control'] = row['d_ssim_control'] = row['control_spread'] = math.nan
        row['d_psnr_bicubic'] = row['psnr'] - bicubic['psnr'] if bicubic else math.nan
        rows.append(row)
    return rows


def _f(value, digits, sign=False):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '–'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def write_ablation_table(rows, out_prefix, bicubic=None, teacher=None, note='', lpips_valid=False):
    """Write ``<out_prefix>.md`` and ``.csv``; return the Markdown.

    A variant "counts" when it beats its matched control by >= 0.2 dB PSNR and by more than twice the larger
    seed-to-seed spread of the two.
    """
    lp = 'LPIPS↓' if lpips_valid else 'd_rand† (not LPIPS)'
    header = [
        'Variant',
        'Init',
        'PSNR↑',
        'SSIM↑',
        'PSNR-Y↑',
        'SSIM-Y↑',
        lp,
        'PSNR per seed',
        'seed spread',
        'Δ PSNR vs control',
        'Δ SSIM vs control',
        'Δ PSNR vs bicubic',
        '≥ +0.2 dB and > 2× spread',
    ]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for label, ref in (('Bicubic', bicubic), ('Teacher', teacher)):
        if ref:
            cells = [label, '–'] + [_f(ref.get(m), 2 if 'psnr' in m else 3) for m in METRICS[:4]]
            cells += [_f(ref.get('lpips'), 4)] + ['–'] * 4
            cells += [_f(ref['psnr'] - bicubic['psnr'], 2, True) if bicubic and label != 'Bicubic' else '–', '–']
            lines.append('| ' + ' | '.join(cells) + ' |')
    for r in rows:
        spread = max(r['psnr_spread'], r['control_spread']) if not math.isnan(r['control_spread']) else math.nan
        counts = '–'
        if not math.isnan(r['d_psnr_control']):
            counts = 'yes' if r['d_psnr_control'] >= 0.2 and r['d_psnr_control'] > 2 * spread else 'no'
        cells = [
            f'{r["variant"]}: {r["description"]}',
            r['init'],
            _f(r['psnr'], 2),
            _f(r['ssim'], 3),
            _f(r['psnr_y'], 2),
            _f(r['ssim_y'], 3),
            _f(r['lpips'], 4),
            ' / '.join(f'{p:.2f}' for p in r['psnr_seeds']),
            _f(r['psnr_spread'], 2),
            _f(r['d_psnr_control'], 2, True),
            _f(r['d_ssim_control'], 4, True),
            _f(r['d_psnr_bicubic'], 2, True),
            counts,
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines.append(
        'Control: the student without KD from the same initialisation, seeds and iterations (`nokd` for random, '
        '`nokd_t` for teacher-initialised variants). Seed spread: max − min PSNR over the seeds.'
    )
    if not lpips_valid:
        lines.append('† LPIPS code path on random-initialised backbones: not a valid LPIPS.')
    if note:
        lines.append(note)
    markdown = '\n'.join(lines) + '\n'
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    with open(f'{out_prefix}.md', 'w') as f:
        f.write(markdown)
    with open(f'{out_prefix}.csv', 'w', newline='') as f:
        fields = ['variant', 'description', 'init', 'seeds', *METRICS, 'psnr_seeds', 'psnr_spread']
        fields += ['d_psnr_control', 'd_ssim_control', 'control_spread', 'd_psnr_bicubic']
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in fields})
    return markdown


def read_teacher(work_dir):
    """The teacher's test metrics in an ablation work folder, or None."""
    path = os.path.join(work_dir, 'results', 'test_teacher_vggface2', 'metrics.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return next(iter(json.load(f).values()))['metrics']


def run_ablation(
    preset_name='ablation',
    faces=None,
    aligned=False,
    work_dir=None,
    seeds=(0, 1),
    variants=None,
    random_vgg=False,
    vgg_weights=None,
    device='cpu',
    table_only=False,
):
    """Train and test every variant for every seed (each skipped when done) and write the ablation table.

    Stages: the preset's data, dictionary and teacher (through :func:`facesr_kd.reproduce.reproduce_table1`),
    then one student run and its test per seed and variant; the table (Markdown + CSV) is rewritten as results
    come in.

    Args:
        preset_name (str): A key of :data:`facesr_kd.recipes.PRESETS`.
        faces (str | None): Aligned face photos (default: the offline demo set).
        aligned (bool): ``faces`` are FFHQ-aligned crops.
        work_dir (str | None): Where everything goes (default: ``runs/<preset>``).
        seeds (list[int]): Seeds of the student runs.
        variants (list[str] | None): Keys of :data:`VARIANTS` (default: all).
        random_vgg (bool): One fixed random VGG19 (labelled).
        vgg_weights (str | None): ImageNet ``vgg19-dcbb9e9d.pth``.
        device (str): ``'cpu'`` or ``'cuda'``.
        table_only (bool): Train nothing: tabulate the runs already done.

    Returns:
        dict: ``{variant: {seed: result}}`` of the runs that finished.
    """
    variants = list(variants or VARIANTS)
    work_dir = os.path.abspath(work_dir or os.path.join('runs', f'{preset_name}'))
    base = dict(
        preset=preset_name, work_dir=work_dir, methods=['Teacher'], faces=faces, aligned=aligned,
        random_vgg=random_vgg, vgg_weights=vgg_weights, device=device,
    )  # fmt: skip
    if not table_only:
        reproduce_table1(**base)
    preset = PRESETS[preset_name]
    data = {s: os.path.join(work_dir, 'data', s) for s in ('train', 'test')}
    data['name'] = os.path.basename(os.path.normpath(faces)) if faces else 'demo'
    vgg_file = random_vgg_file(work_dir) if random_vgg else vgg_weights
    if vgg_file is None:
        from facesr_kd.archs.vgg19 import default_vgg19_path

        vgg_file = default_vgg19_path()
    dict_path = os.path.join(work_dir, f'dictionary_k{preset["num_atoms"]}_{preset["size"]}.pth')
    runner = Runner(work_dir)
    opt_dir = os.path.join(work_dir, 'options')
    results = {v: {} for v in variants}
    bicubic = next(r for r in baseline_rows(os.path.join(data['test'], 'lr_x8'), os.path.join(data['test'], 'hr'))
                   if r['method'] == BICUBIC)  # fmt: skip
    teacher = read_teacher(work_dir)
    table = ''
    for seed in seeds:
        for variant in variants:
            train, test = variant_options(
                variant, seed, preset, work_dir, data, vgg_file, dict_path, device, lpips_random=random_vgg
            )
            if read_result(work_dir, variant, seed) is None and not table_only:
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
                note=f'{describe_preset(preset_name)} Seeds: {seeds}.', lpips_valid=not random_vgg,
            )  # fmt: skip
    print(table)
    print(f'table: {os.path.join(work_dir, "ablation")}.md / .csv, commands: {runner.log}')
    return results
