"""The terminal summary says how many doc commands tests/docs/test_commands.py composed."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    """One line: commands composed (from the tests' user properties, so it works under xdist)."""
    passed = failed = sets = placeholders = 0
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(report, "user_properties", []))
            if "doc_command" not in props or report.when != "call":
                continue
            if outcome == "passed":
                passed += 1
                sets += props.get("doc_compositions", 0)
                placeholders += props.get("doc_placeholders", 0) > 0
            else:
                failed += 1
    if passed or failed:
        terminalreporter.write_line(
            f"docs commands: {passed} of {passed + failed} composed ({sets} compositions, "
            f"{placeholders} with placeholders filled in)"
        )
