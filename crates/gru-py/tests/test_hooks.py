"""The suite's own guards: a run that collects no tests fails (pytest's exit 5), even when a
plugin tries to turn it into a success; a skip for a reason that is not allowed (anything but
torch missing, GRU_REQUIRE_GPU=0 or GRU_ALLOW_NO_F16=1) fails the run."""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

MASKING_PLUGIN = '''
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 0  # what --suppress-no-test-exit-code style plugins do
'''


def test_a_run_collecting_nothing_fails(tmp_path):
    (tmp_path / "masking_plugin.py").write_text(MASKING_PLUGIN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for extra in ([], ["-p", "masking_plugin"]):
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
             "-k", "no_test_has_this_name", str(HERE)],
            capture_output=True, text=True, cwd=HERE.parent, env=env, timeout=120)
        assert run.returncode == 5, (
            f"pytest {' '.join(extra)} collecting no tests exited {run.returncode}, expected 5"
            f"\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        assert "no tests were collected" in run.stderr


def test_stray_skip_probe():
    """Passes in a normal run; skips (a reason that is not allowed) inside the check below."""
    if os.environ.get("GRU_TEST_STRAY_SKIP") == "1":
        import pytest
        pytest.skip("a skip with no allowed reason")


def test_a_skip_that_is_not_allowed_fails_the_run():
    env = dict(os.environ, GRU_TEST_STRAY_SKIP="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{HERE / 'test_hooks.py'}::test_stray_skip_probe"],
        capture_output=True, text=True, cwd=HERE.parent, env=env, timeout=120)
    assert run.returncode == 1, (
        f"a run whose one test skipped for no allowed reason exited {run.returncode}, "
        f"expected 1\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    assert "a skip that is not allowed" in run.stderr
