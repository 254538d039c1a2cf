"""Does the property suite have teeth? Break the engine on purpose, one way at a time, in a
copy of the repository, run the property tests there, and report which ones fail. The copy
unmutated runs first, and must pass.

    python tests/mutation_check.py                 # every mutation below
    python tests/mutation_check.py crlf            # one of them

The repository itself is never modified. Hypothesis runs the "ci" examples without shrinking
(HYPOTHESIS_PROFILE=mutation), so a mutation costs about as long as one run of the tests.
PYTHONPATH names the copy, so the installed `confedit` command that test_refusals_write_nothing
runs imports the mutated engine too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The copy is made elsewhere, with no ../shared beside it: its tests read the corpus from here.
CORPUS = os.environ.get("CONFEDIT_CORPUS", str(REPO.parent / "shared" / "corpus"))
TESTS = (
    "tests/test_properties.py",
    "tests/test_stateful.py",
    "tests/test_readme.py",
    "tests/test_verify.py",
)

# The Back End guards off: the plan's refusal, and the verification that would catch an edit.
BACK_END_GUARDS_OFF: list[tuple[str, str, str]] = [
    (
        "confedit/plan.py",
        "    if path_key(exchange.BACK_END_SITE) in (site, site_of(path_key(_slashed(target.path)))):\n",
        "    if False:\n",
    ),
    (
        "confedit/plan.py",
        "    if site != front or not target.key:\n",
        "    if site not in (front, path_key(exchange.BACK_END_SITE)) or not target.key:\n",
    ),
    (
        "confedit/verify.py",
        "    back_end = path_key(BACK_END_SITE)\n",
        "    return\n    back_end = path_key(BACK_END_SITE)\n",
    ),
]

# The verification off: for a mutation it would catch, what the properties must see themselves.
VERIFICATION_OFF: list[tuple[str, str, str]] = [
    (
        "confedit/engine.py",
        "    actions = verify(document, the_plan.edits, output)\n",
        "    actions: list[list[str]] = []\n",
    ),
]

# name -> [(file, text in the engine, text replacing it)]
MUTATIONS: dict[str, list[tuple[str, str, str]]] = {
    "back-end-guard": BACK_END_GUARDS_OFF,
    # The default targets' Back End counterparts offloaded too, the guards off: what the
    # README's example property (tests/test_readme.py) and the Back End properties must catch.
    "back-end-counterparts": [
        (
            "confedit/plan.py",
            "        unique = _present_defaults(draft, unique, site_name)\n",
            "        unique = _present_defaults(draft, unique, site_name)\n"
            "        twins = [exchange.BACK_END_SITE + t.path[len(site_name) :] for t in unique]\n"
            "        unique += [_target(config, p, None, False) for p in twins if config.spelling(path_key(p))]\n",
        ),
        *BACK_END_GUARDS_OFF,
    ],
    "insertion-indentation": [
        (
            "confedit/writing.py",
            "        block = _nested(creates, child_indent, unit, newline)\n",
            "        block = _nested(creates, parent_indent, unit, newline)\n",
        ),
    ],
    # Two more, for the properties about meaning: an edit in the wrong one of two <location>
    # elements for one path, and inheritance that ignores inheritInChildApplications.
    "wrong-location": [
        (
            "confedit/plan.py",
            "    return next((loc for loc in locations if not decides_override(loc.element)), None)\n",
            "    return locations[-1] if locations else None\n",
        ),
    ],
    "inheritance": [
        (
            "confedit/iis.py",
            '        if location.element.get("inheritInChildApplications", "").lower() != "false":\n',
            "        if True:\n",
        ),
    ],
    "crlf": [
        (
            "confedit/document.py",
            '        return b"\\r\\n" if end > 0 and self.data[end - 1 : end] == b"\\r" else b"\\n"\n',
            '        return b"\\n"\n',
        ),
    ],
    # Refusals the engine must make: a lock, or Extended Protection, ignored.
    "lock-attributes": [
        (
            "confedit/plan.py",
            '    if _names(names) & {name.lower(), "*"}:\n',
            '    if _names(names) & {"*"}:\n',
        ),
    ],
    "lock-all-attributes-except": [
        (
            "confedit/plan.py",
            "    if except_names is not None and name.lower() not in _names(except_names):\n",
            "    if False:\n",
        ),
    ],
    "lock-item": [
        (
            "confedit/plan.py",
            '    if element.get("lockItem", "").lower() == "true":\n',
            "    if False:\n",
        ),
    ],
    "lock-elements": [
        (
            "confedit/plan.py",
            '    return _list_locks(element, "Elements", "access")\n',
            "    return []\n",
        ),
    ],
    "lock-on-ancestor": [
        (
            "confedit/plan.py",
            "    for level in lineage(target.key)[1:]:\n",
            "    for level in lineage(target.key)[:1]:\n",
        ),
    ],
    "extended-protection": [
        (
            "confedit/plan.py",
            '        if token.value.lower() in ("allow", "require") and token.source is not None:\n',
            "        if False:\n",
        ),
    ],
    "extended-protection-below": [
        (
            "confedit/plan.py",
            "        key for key in config.below(target.key) if _source_after(config, key, {target.key}) is None\n",
            "        key for key in config.below(target.key) if False\n",
        ),
    ],
    # The warning that a web.config could override sslFlags (the access section unlocked for a
    # target) never given.
    "delegated-warning": [
        ("confedit/plan.py", "    if delegated:\n", "    if False:\n"),
    ],
    # What is written: the value, where, in which quotes; with the verification off for those
    # it would catch, so that the properties must see the bug themselves.
    "value-case": [
        (
            "confedit/writing.py",
            '            (start, end), text = found, b"None"\n',
            '            (start, end), text = found, b"none"\n',
        ),
        *VERIFICATION_OFF,
    ],
    "value-kept": [
        (
            "confedit/writing.py",
            "        if value is not None and SslFlags.parse(value) == NONE:\n",
            "        if value is not None:\n",
        ),
    ],
    "attribute-order": [
        (
            "confedit/writing.py",
            "            start = end = close.start() if close else span.start_tag_end - 1\n",
            '            start = end = span.start + len(b"<access")\n',
        ),
    ],
    "quote-style": [
        (
            "confedit/writing.py",
            "            text = b' sslFlags=\"None\"'\n",
            "            text = b\" sslFlags='None'\"\n",
        ),
    ],
    "self-closed-attributes": [
        (
            "confedit/writing.py",
            '            open_tag = _TAG_CLOSE.sub(b">", data[span.start : span.end])\n',
            '            open_tag = b"<" + parent.tag.encode() + b">"\n',
        ),
        *VERIFICATION_OFF,
    ],
    "bom-dropped": [
        (
            "confedit/document.py",
            "            return data  # the working bytes are the file bytes, BOM included\n",
            "            return data.removeprefix(codecs.BOM_UTF8)\n",
        ),
    ],
    "utf16-as-utf8": [
        (
            "confedit/document.py",
            '        return self.bom + data.decode("utf-8").encode(self.name)\n',
            "        return data\n",
        ),
    ],
    # Inheritance read from the wrong levels, and paths compared with their case.
    "server-level-ignored": [
        (
            "confedit/iis.py",
            "        for level in lineage(key):\n            if level in stops:\n",
            "        for level in lineage(key)[:-1]:\n            if level in stops:\n",
        ),
    ],
    "site-level-ignored": [
        (
            "confedit/iis.py",
            "        for level in lineage(key):\n            if level in stops:\n",
            "        for level in lineage(key)[:-2] + lineage(key)[-1:]:\n            if level in stops:\n",
        ),
    ],
    "path-case": [
        (
            "confedit/iis.py",
            '    return "" if path == "." else fold(path)\n',
            '    return "" if path == "." else path\n',
        ),
    ],
    "descendants-judged-alone": [
        (
            "confedit/plan.py",
            "            if key not in offloaded and _requires_ssl_after(config, key, offloaded):\n",
            "            if key not in offloaded and _requires_ssl_after(config, key, keys):\n",
        ),
    ],
    "descendants-past-boundary": [
        (
            "confedit/plan.py",
            "        if location is None or config.location_flows_to(location, key):\n",
            "        if True:\n",
        ),
    ],
    "extended-protection-case": [
        (
            "confedit/plan.py",
            '        if token.value.lower() in ("allow", "require") and token.source is not None:\n',
            '        if token.value in ("Allow", "Require") and token.source is not None:\n',
        ),
    ],
    # Files IIS would not load, taken as loadable.
    "duplicate-section": [
        ("confedit/iis.py", "    _check_defined_once(config)\n", "    pass\n"),
    ],
    "bad-flags": [
        (
            "confedit/iis.py",
            '            SslFlags.parse(value if value is not None else "None")\n',
            "            pass\n",
        ),
    ],
    # One check of verify.py off or weakened, the engine right: what the corruptions of real
    # edits (tests/test_verify.py) must catch.
    "verify-last-gap": [
        (
            "confedit/verify.py",
            "    for edit in [*steps, None]:\n",
            "    for edit in steps:\n",
        ),
    ],
    "verify-edit-text": [
        (
            "confedit/verify.py",
            "            if not same_bytes(output, edit.start + shift, edit.text, 0, len(edit.text)):\n",
            "            if False:\n",
        ),
    ],
    "verify-one-node": [
        (
            "confedit/verify.py",
            "    nodes: list[etree._Element] = list(wrapper)\n",
            "    nodes: list[etree._Element] = [n for n in wrapper if isinstance(n.tag, str)]\n",
        ),
    ],
    "verify-children-kept": [
        ("confedit/verify.py", "            _check_children_kept(document.data, edit)\n", ""),
    ],
    "verify-defined-once": [
        ("confedit/verify.py", "        _check_access_defined_once(document, steps)\n", ""),
    ],
    "verify-top-level": [
        (
            "confedit/verify.py",
            "        _check_new_locations_at_top_level(document, [e for e in steps if e.anchor is None])\n",
            "",
        ),
    ],
    "verify-back-end": [
        (
            "confedit/verify.py",
            "    back_end = path_key(BACK_END_SITE)\n",
            "    return\n    back_end = path_key(BACK_END_SITE)\n",
        ),
    ],
}


def copy_repository(target: Path) -> None:
    ignored = shutil.ignore_patterns(".git", "*_cache", "__pycache__", ".hypothesis", "*.egg-info")
    shutil.copytree(REPO, target, ignore=ignored)


def mutate(root: Path, changes: list[tuple[str, str, str]]) -> None:
    for name, old, new in changes:
        path = root / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(f"{name}: the text to mutate is not there once: {old!r}")
        path.write_text(text.replace(old, new), encoding="utf-8")


def run_tests(root: Path) -> tuple[int, list[str], str]:
    """Run the property tests on the copy (its confedit/ comes first on sys.path)."""
    environment = {
        **os.environ,
        "HYPOTHESIS_PROFILE": "mutation",
        "PYTHONPATH": str(root),
        "CONFEDIT_CORPUS": CORPUS,
    }
    where = subprocess.run(
        [sys.executable, "-c", "import confedit; print(confedit.__file__)"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    if not where.stdout.startswith(str(root)):
        raise SystemExit(f"the copy's confedit is not the one imported: {where.stdout}")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *TESTS],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    return proc.returncode, failed, summary


def main(names: list[str]) -> int:
    # The control: the copy as it is must pass, or a test that fails for another reason (a
    # file the copy lacks, say) would be taken for one that caught every mutation.
    with tempfile.TemporaryDirectory(prefix="confedit-control-") as tmp:
        root = Path(tmp) / "repo"
        copy_repository(root)
        code, failed, summary = run_tests(root)
    print(f"unmutated: {summary}")
    if code != 0:
        print(f"the tests fail without a mutation: {', '.join(failed) or summary}")
        return 1
    toothless = []
    for name in names or list(MUTATIONS):
        with tempfile.TemporaryDirectory(prefix="confedit-mutant-") as tmp:
            root = Path(tmp) / "repo"
            copy_repository(root)
            mutate(root, MUTATIONS[name])
            code, failed, summary = run_tests(root)
        print(f"{name}: {summary}")
        for test in failed:
            print(f"    {test}")
        if code == 0:
            toothless.append(name)
    if toothless:
        print(f"no property failed for: {', '.join(toothless)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
