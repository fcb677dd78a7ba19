"""Shared body of ``facesr_kd.train`` and ``facesr_kd.test``: BasicSR's pipelines rooted in the working directory."""

import logging
import os
import re
import sys

# Printed by a run of several option files after each one: ``facesr_kd.train: done 2/7 <file>``.
DONE_MARK = 'facesr_kd.{kind}: done'
DONE_RE = re.compile(re.escape(DONE_MARK).replace(re.escape('{kind}'), '(?:train|test)') + r' (\d+)/(\d+) ')


def split_option_files(argv):
    """``['-opt', 'a.yml', '-opt', 'b.yml', '--debug']`` -> ``(['a.yml', 'b.yml'], ['--debug'])``.

    Raises:
        SystemExit: An ``-opt`` without a file after it.
    """
    files, rest, args = [], [], list(argv)
    while args:
        arg = args.pop(0)
        if arg == '-opt':
            if not args or args[0].startswith('-'):
                sys.exit('error: -opt needs an option file after it')
            files.append(args.pop(0))
        else:
            rest.append(arg)
    return files, rest


def _reset_basicsr_logger():
    """Forget BasicSR's root logger, so that the next pipeline logs to its own file (BasicSR sets it up once)."""
    from basicsr.utils.logger import initialized_logger

    logger = logging.getLogger('basicsr')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    initialized_logger.pop('basicsr', None)


def run_pipeline(kind, argv=None):
    """Run BasicSR's ``train_pipeline`` or ``test_pipeline`` with outputs under the current directory.

    Several ``-opt`` files run one after the other in this process (one start-up of torch and BasicSR for all;
    each file gets its own log and seeds, as in a process of its own), the other arguments applying to each.
    Training stops at the first file that fails (a later one may need its weights); testing reports it and goes
    on. Either way the exit status is then non-zero.

    Args:
        kind (str): ``'train'`` or ``'test'``.
        argv (list[str] | None): Command-line arguments (default: ``sys.argv[1:]``); BasicSR parses them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    import facesr_kd  # noqa: F401  (compat fixes and registration before basicsr)
    from facesr_kd.utils.options import OptionError

    from basicsr import test, train

    pipeline = train.train_pipeline if kind == 'train' else test.test_pipeline
    files, rest = split_option_files(argv)
    if len(files) < 2:
        sys.argv = [sys.argv[0], *argv]
        try:
            pipeline(os.getcwd())
        except OptionError as err:
            sys.exit(f'error: {err}')
        return

    failed, mark = [], DONE_MARK.format(kind=kind)
    for i, opt_file in enumerate(files, 1):
        sys.argv = [sys.argv[0], '-opt', opt_file, *rest]
        try:
            pipeline(os.getcwd())
        except OptionError as err:
            failed.append(f'{opt_file}: {err}')
        except Exception as err:  # reported with its traceback in the log; the exit status says it failed
            logging.getLogger('basicsr').exception(f'{kind} {opt_file} failed')
            failed.append(f'{opt_file}: {type(err).__name__}: {err}')
        else:
            print(f'{mark} {i}/{len(files)} {opt_file}', flush=True)
        _reset_basicsr_logger()
        if failed and kind == 'train':
            break
    if failed:
        left = f'; {len(files) - i} not started' if i < len(files) else ''
        sys.exit(f'error: {len(failed)} of {len(files)} option files failed{left}:\n  ' + '\n  '.join(failed))
