"""The repository explains itself: the generated reference pages are current, every link in
the README and docs/ leads to a file in the repository, and nothing a reader or caseworker
sees cites the developers' own notes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipelines import reference
from pipelines.policy.params import default_parameters
from pipelines.rules.catalog import all_rules, rule
from sources.registry import all_sources

ROOT = reference.REPO_ROOT
FIX = "run `doudi docs` (or .venv/bin/python -m pipelines.reference) and commit the pages it writes"
DEVELOPER_FILES = re.compile(r"RULES\.md|CONTRACT\.md|DESIGN\.md|\.\./shared|/shared/")


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return reference.pages()


def documentation_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# ---- the generated pages ---------------------------------------------------------------------


def test_generated_pages_are_current(generated):
    stale = reference.stale_pages(ROOT, generated)
    assert not stale, (
        f"out of date with the code: {', '.join(stale)} (a rule, parameter, source spec, data check, "
        f"CLI option or table changed); {FIX}"
    )


def test_generated_pages_are_deterministic_and_portable(generated):
    assert reference.pages() == generated, "two runs of the generator differ: its output must not depend on time or order"
    for path, text in generated.items():
        assert str(ROOT) not in text, f"{path} holds an absolute path of this machine"
        assert not re.search(r"/home/|/tmp/|/Users/|[A-Z]:\\\\", text), f"{path} holds a machine-specific path"
        assert text.endswith("\n") and not text.endswith("\n\n"), path


def test_generated_pages_cover_the_code(generated):
    cli, rules, inbox = generated[reference.CLI_PAGE], generated[reference.RULES_PAGE], generated[reference.INBOX_PAGE]
    for r in all_rules():
        assert f"### {r.code} {r.title}" in rules and r.policy_ref in rules, r.code
    for name in default_parameters().parameters:
        assert f"### {name}" in rules, name
    for spec in all_sources():
        assert f"## {spec.source}\n" in inbox, spec.source
        for col in spec.columns:
            for header in col.headers:
                assert header in inbox, (spec.source, header)
    from pipelines.commands import build_parser

    for action in build_parser()._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for command in action.choices:
                assert f"## doudi {command}\n" in cli, command


def test_check_mode_names_the_stale_pages(tmp_path, capsys):
    assert sorted(reference.stale_pages(tmp_path)) == sorted(reference.pages())
    assert reference.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert reference.RULES_PAGE in err and "doudi docs" in err
    written = reference.write_reference(tmp_path)
    assert sorted(written) == sorted(reference.pages())
    assert reference.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / reference.CLI_PAGE).write_text("edited by hand\n", encoding="utf-8")
    assert reference.stale_pages(tmp_path) == [reference.CLI_PAGE]


# ---- links -----------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.IGNORECASE)
EXTERNAL = re.compile(r"^(?:https?:|mailto:)", re.IGNORECASE)


def without_fences(text: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def without_code(text: str) -> str:
    """Markdown without fenced blocks and inline code, where brackets are not links."""
    text = without_fences(text)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", text, flags=re.DOTALL)


def links(text: str) -> list[str]:
    body = without_code(text)
    found = [m.group(1) or m.group(2) for m in INLINE_LINK.finditer(body)]
    return found + [m.group(1) for pattern in (REFERENCE_LINK, HTML_LINK) for m in pattern.finditer(body)]


def anchors(path: Path) -> set[str]:
    """The fragments a Markdown file offers: its headings as GitHub names them (repeats get
    -1, -2, ...) and explicit id/name attributes."""
    text = without_fences(path.read_text(encoding="utf-8"))
    found, seen = set(), {}
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE):
        slug = reference.github_anchor(match.group(1))
        count = seen.get(slug, 0)
        found.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    found |= set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return found


def test_links_lead_to_files_inside_the_repository():
    problems = []
    checked = 0
    for doc in documentation_files():
        where = doc.relative_to(ROOT).as_posix()
        for target in links(doc.read_text(encoding="utf-8")):
            if EXTERNAL.match(target):
                continue
            checked += 1
            path_part, _, fragment = target.partition("#")
            path_part = unquote(path_part)
            if re.match(r"^[a-z][a-z0-9+.-]*:", path_part, re.IGNORECASE) or path_part.startswith(("/", "~", "\\")):
                problems.append(f"{where}: {target} is not a relative link inside the repository")
                continue
            resolved = (doc.parent / path_part).resolve() if path_part else doc
            if not resolved.is_relative_to(ROOT):
                problems.append(f"{where}: {target} leads outside the repository")
                continue
            if not resolved.exists():
                problems.append(f"{where}: {target} does not exist")
                continue
            if fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(resolved):
                problems.append(f"{where}: {target}: no heading #{fragment} in {resolved.relative_to(ROOT).as_posix()}")
    assert checked > 20, "the link search found almost nothing: the patterns are broken"
    assert not problems, "broken links (fix the link; for a generated page, " + FIX + "):\n" + "\n".join(problems)


def test_link_search_finds_what_markdown_links():
    text = "[a](x.md) ![i](img.png) [b](<y z.md>) `[not](code.md)`\n```\n[nor](fence.md)\n```\n[r]: ref.md\n<a href=\"h.md\">h</a>"
    assert sorted(links(text)) == ["h.md", "img.png", "ref.md", "x.md", "y z.md"]


def test_the_docs_never_point_at_the_developers_notes():
    found = [
        f"{doc.relative_to(ROOT).as_posix()}:{n}: {line.strip()}"
        for doc in documentation_files()
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if DEVELOPER_FILES.search(line)
    ]
    assert not found, "the docs must be the project's own words, not a pointer to notes outside the repository:\n" + "\n".join(found)


def test_readme_and_inbox_page_name_every_inbox_folder():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    inbox = (ROOT / "docs" / "inbox.md").read_text(encoding="utf-8")
    assert "docs/inbox.md" in readme
    for spec in all_sources():
        assert f"`{spec.source}`" in readme, f"README.md does not name the inbox folder {spec.source}"
        assert f"`{spec.source}/`" in inbox, f"docs/inbox.md does not describe the inbox folder {spec.source}/"
    for command in ("compare-linkage", "docs"):
        assert re.search(rf"^\| `doudi {command}\b", readme, re.MULTILINE), f"README.md's commands table has no row for doudi {command}"


# ---- what caseworkers and analysts see ----------------------------------------------------------


def test_citations_name_real_documents():
    """policy_ref, actions and parameter references reach the lists and the warehouse: they
    cite policy documents and standards, never a file of the developers."""
    for r in all_rules():
        for text in (r.policy_ref, r.action, r.title, r.doc):
            assert not DEVELOPER_FILES.search(text), (r.code, text)
    for parameter in default_parameters().parameters.values():
        for value in parameter.values:
            for text in (value.reference, value.quote or "", parameter.description):
                assert not DEVELOPER_FILES.search(text), (parameter.name, text)
    assert "GB 11643《公民身份号码》" in rule("Q01").policy_ref
