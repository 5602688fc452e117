"""The front page and docs/: relative links resolve, README.md stays short.

Standard library + pytest only (no mmext import), so it runs in any environment in
well under a second:

    python -m pytest tests/test_readme.py

Checks, for README.md and every docs/*.md:
- each relative link ``[text](target)`` / ``<img src="target">`` outside code blocks
  points to an existing file or folder, and a ``#anchor`` on a Markdown target (or on
  the page itself) names one of its headings (GitHub's slug rules);
for every user-facing page (``user_facing_docs()``: README.md, docs/*.md,
configs/*/README.md, mmext/ops/README.md):
- no project issue references (``#13``, ``issue 13``, ``issues #21, #22``): a page says
  what changed and when, not which ticket changed it;
and for README.md and the user guides written for it (``FRONT_DOCS``):
- no machine nicknames (``VM``);
- README.md has at most ``MAX_README_LINES`` lines and links every docs/*.md.
"""
import os.path as osp
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_README_LINES = 160
# The pages written for newcomers: held to the README's rules.
FRONT_DOCS = ['README.md', 'docs/install.md', 'docs/get_started.md', 'docs/demo.md',
              'docs/testing.md', 'docs/layout.md']

FENCE = re.compile(r'^\s*(```|~~~)')
MD_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_SRC = re.compile(r'<(?:img|a)\b[^>]*?\b(?:src|href)="([^"]+)"', re.IGNORECASE)
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
# '#12' (not an HTML entity, URL fragment or anchor), 'issue 12', 'issues #21';
# not 'issue 56%' (a profiler's issue-slot rate).
ISSUE_REF = re.compile(r'(?<![\w&/#-])#\d+\b|\bissues?\s+#?\d+\b(?!%)', re.IGNORECASE)
VM_NAME = re.compile(r'\bVMs?\b')


def markdown_files() -> List[Path]:
    return [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))


def user_facing_docs() -> List[Path]:
    """Every page a user reads: README.md, docs/*.md, each method's README, the op's."""
    pages = markdown_files() + sorted((ROOT / 'configs').glob('*/README.md'))
    return pages + [p for p in [ROOT / 'mmext' / 'ops' / 'README.md'] if p.exists()]


def issue_references(path: Path, root: Path = ROOT) -> List[str]:
    """'file:line: ...' for each line that cites a project issue number."""
    name = osp.relpath(path, root)
    return [f'{name}:{no}: issue reference {m.group(0)!r}: {line.strip()}'
            for no, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1)
            for m in [ISSUE_REF.search(line)] if m]


def prose_lines(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    in_fence = False
    for no, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield no, line


def strip_inline_code(line: str) -> str:
    return re.sub(r'`[^`]*`', '', line)


def links(text: str) -> Iterator[Tuple[int, str]]:
    for no, line in prose_lines(text):
        line = strip_inline_code(line)
        for pattern in (MD_LINK, HTML_SRC):
            for m in pattern.finditer(line):
                yield no, m.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation other
    than '-' and '_' dropped, each space a '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links -> their text
    text = re.sub(r'<[^>]+>', '', text).replace('`', '').replace('*', '')
    text = text.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: Path, cache: Dict[Path, Set[str]] = {}) -> Set[str]:
    if path not in cache:
        seen: Dict[str, int] = {}
        found = set()
        for _, line in prose_lines(path.read_text(encoding='utf-8')):
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f'{base}-{n}')
        cache[path] = found
    return cache[path]


def broken_links(md: Path, root: Path = ROOT) -> List[str]:
    problems = []
    for no, target in links(md.read_text(encoding='utf-8')):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.IGNORECASE):  # http:, mailto:
            continue
        path_part, _, anchor = target.partition('#')
        dest = md if not path_part else (md.parent / path_part).resolve()
        where = f'{osp.relpath(md, root)}:{no}: {target}'
        if not dest.exists():
            problems.append(f'{where}: {path_part} does not exist')
        elif anchor and dest.suffix == '.md' and dest.is_file() \
                and anchor not in anchors(dest):
            problems.append(f'{where}: no heading #{anchor} in {osp.relpath(dest, root)}')
    return problems


@pytest.mark.parametrize('md', markdown_files(), ids=lambda p: osp.relpath(p, ROOT))
def test_relative_links_resolve(md):
    problems = broken_links(md)
    assert not problems, '\n'.join(problems)


def test_readme_is_short():
    n = len((ROOT / 'README.md').read_text(encoding='utf-8').splitlines())
    assert n <= MAX_README_LINES, f'README.md has {n} lines (at most {MAX_README_LINES})'


def test_readme_indexes_every_doc():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    linked = {t.partition('#')[0] for _, t in links(text)}
    missing = [f'docs/{p.name}' for p in sorted((ROOT / 'docs').glob('*.md'))
               if f'docs/{p.name}' not in linked]
    assert not missing, f'README.md does not link {missing}'


def test_readme_keeps_the_deploy_placeholder():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    assert '## Deploy' in text


@pytest.mark.parametrize('md', user_facing_docs(), ids=lambda p: osp.relpath(p, ROOT))
def test_no_issue_numbers(md):
    problems = issue_references(md)
    assert not problems, '\n'.join(problems)


def test_issue_check_covers_every_user_facing_page():
    names = {osp.relpath(p, ROOT) for p in user_facing_docs()}
    expected = {'README.md', 'docs/pkd.md', 'configs/pkd/README.md',
                'configs/lau/README.md', 'configs/spatialflow/README.md'}
    assert expected <= names, sorted(expected - names)
    if (ROOT / 'mmext' / 'ops' / 'README.md').exists():
        assert 'mmext/ops/README.md' in names


@pytest.mark.parametrize('name', FRONT_DOCS)
def test_no_machine_nicknames(name):
    path = ROOT / name
    if not path.exists():
        pytest.skip(f'{name} not present')
    problems = []
    for no, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        m = VM_NAME.search(line)
        if m:
            problems.append(f'{name}:{no}: VM name {m.group(0)!r}: {line.strip()}')
    assert not problems, '\n'.join(problems)


# The checker itself must be able to fail.

def test_checker_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / 'other.md').write_text('# Real heading\n## Torch >= 2.6\n')
    md = tmp_path / 'page.md'
    md.write_text('[ok](other.md#real-heading) [ok](other.md#torch--26)\n'
                  '[gone](missing.md) ![img](img/none.png) [bad](other.md#nope)\n'
                  '<img src="also_missing.png" width="10"> [web](https://example.com)\n'
                  '```\n[in code](not_checked.md)\n```\n[self](#nowhere)\n')
    problems = broken_links(md, root=tmp_path)
    assert len(problems) == 5, problems
    assert any('missing.md does not exist' in p for p in problems)
    assert any('no heading #nope' in p for p in problems)
    assert any('no heading #nowhere' in p for p in problems)


@pytest.mark.parametrize('line, hit', [
    ('after the changes of issue #13', True), ('see #21', True), ('issues 21, 22', True),
    ('[x](install.md#checkpoints-and-torch--26)', False), ('colour #fff', False),
    ('step 2 of 7', False), ('before #12 (NMS 0.5)', True), ('SM issue 56%, occupancy', False),
    ('issues #21, #22', True), ('Issue 7', True)])
def test_issue_pattern(line, hit):
    assert bool(ISSUE_REF.search(line)) == hit


def test_issue_check_reports_file_and_line(tmp_path):
    md = tmp_path / 'page.md'
    md.write_text('# Title\nfixed since 2026-12-02\nas before issue #11, see #12\n'
                  '[a](other.md#pkd-the-effect) colour #fff\n')
    problems = issue_references(md, root=tmp_path)
    assert len(problems) == 1 and problems[0].startswith('page.md:3: '), problems
