"""``python -m mmext config-scope {enable,disable,status} [--site-dir DIR]``.

The opt-in start-up hook for 'mmext::' configs (see :mod:`mmext.config_scope`).
"""
import sys

from .config_scope import main

USAGE = 'usage: python -m mmext config-scope {enable,disable,status} [--site-dir DIR]'

if __name__ == '__main__':
    if sys.argv[1:2] != ['config-scope']:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[2:]))
