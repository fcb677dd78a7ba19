"""The README and docs/ stay short, linked and true: length, links, the flags of every command, the smoke table.

The command check calls each console script's own argparse parser in-process (its ``parse_known_args`` is
intercepted before any work starts), so it is fast and needs no installed scripts: a command whose script is
not in pyproject.toml's ``[project.scripts]`` fails, as does a flag its parser does not list.
"""

import argparse
import csv
import importlib
import math
import re
import shlex
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
DOCS = sorted((ROOT / 'docs').glob('*.md'))
SMOKE_CSV = ROOT / 'docs' / 'table1_smoke.csv'
SMOKE_MARKER = '<!-- smoke table: docs/table1_smoke.csv -->'
ZOO_CSV = ROOT / 'docs' / 'zoo_quality.csv'
ZOO_MARKER = '<!-- zoo table: docs/zoo_quality.csv -->'
MAX_README_LINES = 300

FENCE = re.compile(r'^```.*?^```', re.S | re.M)
INLINE_CODE = re.compile(r'`[^`\n]*`')
LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_SRC = re.compile(r'<(?:img|a)\b[^>]*?\b(?:src|href)="([^"]+)"', re.I)
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$', re.M)


def _prose(text):
    """Markdown without fenced code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub('', FENCE.sub('', text))


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'`([^`]*)`', r'\1', heading)
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = ''.join(c for c in text.lower() if c in ' -_' or unicodedata.category(c)[0] in 'LN')
    return text.replace(' ', '-')


def anchors(path):
    """Every heading anchor of a Markdown file, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen, out = {}, set()
    for _, title in HEADING.findall(FENCE.sub('', path.read_text())):
        slug = github_anchor(title)
        out.add(f'{slug}-{seen[slug]}' if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def relative_links(path):
    text = _prose(path.read_text())
    targets = LINK.findall(text) + HTML_SRC.findall(text)
    return [t for t in targets if not re.match(r'^[a-z][a-z0-9+.-]*:', t, re.I)]  # http:, mailto: ...


def broken_links(path):
    """Relative links and images of ``path`` whose file (or heading anchor) does not exist."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition('#')
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f'{target} (no such file)')
        elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
            broken.append(f'{target} (no heading #{anchor} in {dest.name})')
    return broken


def test_readme_is_at_most_300_lines():
    lines = README.read_text().count('\n')
    assert lines <= MAX_README_LINES, f'README.md has {lines} lines; move detail into docs/'


@pytest.mark.parametrize('path', [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves(path):
    assert broken_links(path) == []


def test_link_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / 'other.md').write_text('# Real heading (`--flag`)\n')
    page = tmp_path / 'page.md'
    page.write_text(
        '[ok](other.md#real-heading---flag) ![gone](missing.png) [bad](other.md#nope) `[code](x.md)`\n'
        '```\n[in a block](y.md)\n```\n[web](https://example.org/x.md) [self](#here)\n## Here\n'
    )
    assert broken_links(page) == ['missing.png (no such file)', 'other.md#nope (no heading #nope in other.md)']


# ---------------------------------------------------------------------------------------------------------------
# Commands


def console_scripts():
    """``[project.scripts]`` of pyproject.toml (read with a regex: ``tomllib`` needs Python 3.11)."""
    text = (ROOT / 'pyproject.toml').read_text()
    section = re.search(r'^\[project\.scripts\]\n(.*?)(?=^\[|\Z)', text, re.S | re.M)
    assert section, 'pyproject.toml has no [project.scripts] table'
    return dict(re.findall(r'^([\w.-]+)\s*=\s*["\']([^"\']+)["\']', section.group(1), re.M))


def readme_commands(text):
    """Every ``facesr-kd-*`` command of the README's code blocks, continuation lines joined, as token lists."""
    commands = []
    for block in FENCE.findall(text):
        body = re.sub(r'\\\n\s*', ' ', '\n'.join(block.splitlines()[1:-1]))
        for line in body.splitlines():
            line = line.split(' #')[0] if not line.lstrip().startswith('#') else ''
            for part in re.split(r'&&|\|\||;|\|', line):
                tokens = shlex.split(part, comments=True)
                while tokens and re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', tokens[0]):  # OMP_NUM_THREADS=1 cmd
                    tokens = tokens[1:]
                if tokens and tokens[0].startswith('facesr-kd-'):
                    commands.append(tokens)
    return commands


class _Parsed(Exception):
    def __init__(self, parser):
        self.parser = parser


def option_strings(parser):
    """The flags a parser (and its sub-command parsers) accepts."""
    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= option_strings(sub)
    return flags


def script_flags(name, monkeypatch):
    """Call console script ``name``'s entry point with ``--help``; catch its parser before it parses."""
    module_name, _, func_name = console_scripts()[name].partition(':')
    func = getattr(importlib.import_module(module_name), func_name)

    def intercept(self, args=None, namespace=None):
        raise _Parsed(self)

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, 'parse_known_args', intercept)
        m.setattr(sys, 'argv', [name, '--help'])
        with pytest.raises(_Parsed) as caught:
            func()
    return option_strings(caught.value.parser)


def bad_flags(tokens, flags):
    used = [t.split('=')[0] for t in tokens[1:] if t.startswith('-') and not re.match(r'^-\d', t)]
    return [f for f in used if f not in flags]


def test_every_readme_command_exists_and_uses_only_flags_its_help_lists(monkeypatch):
    commands = readme_commands(README.read_text())
    assert any(c[0] == 'facesr-kd-reproduce' for c in commands)  # the main job is among them
    scripts, problems, cache = console_scripts(), [], {}
    for tokens in commands:
        name = tokens[0]
        if name not in scripts:
            problems.append(f'{name}: no such console script in pyproject.toml')
            continue
        if name not in cache:
            cache[name] = script_flags(name, monkeypatch)
        problems += [
            f'{" ".join(tokens)}: {flag} is not an option of {name}' for flag in bad_flags(tokens, cache[name])
        ]
    assert problems == []


def test_command_check_catches_an_unknown_script_and_an_unknown_flag(monkeypatch):
    text = '```bash\nOMP_NUM_THREADS=1 facesr-kd-reproduce --preset smoke \\\n'
    text += '    --no-such-flag 3 && facesr-kd-nope -x  # a comment\n```\n'
    commands = readme_commands(text)
    assert commands == [
        ['facesr-kd-reproduce', '--preset', 'smoke', '--no-such-flag', '3'],
        ['facesr-kd-nope', '-x'],
    ]
    assert 'facesr-kd-nope' not in console_scripts()
    assert bad_flags(commands[0], script_flags('facesr-kd-reproduce', monkeypatch)) == ['--no-such-flag']


def test_basicsr_pipelines_parsers_are_reached(monkeypatch):
    # facesr-kd-train is BasicSR's train pipeline: its flags come from BasicSR's own parser.
    assert {'-opt', '--auto_resume', '--launcher', '--force_yml'} <= script_flags('facesr-kd-train', monkeypatch)


# ---------------------------------------------------------------------------------------------------------------
# The smoke table


def _fmt(value, digits, sign=False):
    value = float(value) if value not in ('', None) else math.nan
    return '–' if math.isnan(value) else f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def _table_after(text, marker):
    """The body rows (cells) of the Markdown table right after ``marker``."""
    assert marker in text, f'the README lost the marker {marker!r} above its table'
    table = []
    for line in text.split(marker, 1)[1].strip().splitlines()[2:]:
        if not line.startswith('|'):
            break
        table.append([c.strip() for c in line.strip().strip('|').split('|')])
    return table


def test_readme_smoke_table_equals_docs_table1_smoke_csv():
    table = _table_after(README.read_text(), SMOKE_MARKER)
    with open(SMOKE_CSV) as f:
        rows = list(csv.DictReader(f))
    bicubic = float(next(r['psnr'] for r in rows if r['method'] == 'Bicubic'))
    expected = [
        [
            r['method'],
            _fmt(r['psnr'], 2),
            _fmt(r['ssim'], 3),
            '–' if r['method'] == 'Bicubic' else _fmt(float(r['psnr']) - bicubic, 2, sign=True),
            _fmt(r['latency_ms'], 1),
        ]
        for r in rows
    ]
    assert table == expected, 'regenerate the README smoke table from docs/table1_smoke.csv'


def test_readme_zoo_table_equals_docs_zoo_quality_csv():
    """The README's model-zoo table is docs/zoo_quality.csv (facesr-kd-benchmark-zoo's output), rounded."""
    table = _table_after(README.read_text(), ZOO_MARKER)
    with open(ZOO_CSV) as f:
        rows = list(csv.DictReader(f))
    expected = []
    for name in [r['model'] for r in rows if not r['model'].startswith('Bicubic') and r['condition'] == 'clean']:
        cells = []
        for condition in ('clean', 'jpeg75'):
            m = next(r for r in rows if r['model'] == name and r['condition'] == condition)
            b = next(
                r
                for r in rows
                if r['model'].startswith('Bicubic') and (r['lq'], r['condition']) == (m['lq'], condition)
            )
            gain = float(m['psnr']) - float(b['psnr'])
            cells += [
                f'{float(m["psnr"]):.2f} / {float(m["ssim"]):.3f} ({gain:+.2f})',
                f'{float(b["psnr"]):.2f} / {float(b["ssim"]):.3f}',
            ]
        lq, hr = m['lq'].split('->')
        params = f'{int(m["params"]) / 1e6:.2f} M'
        expected.append([f'`{name}`', f'{lq} → {hr}', params, f'{float(m["ms_per_face"]):.0f}', *cells])
    assert table and table == expected, 'regenerate the README zoo table from docs/zoo_quality.csv'
