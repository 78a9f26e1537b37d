"""pip install ./python, then import it from elsewhere with no path set: the
package finds the libhestat.so.0 that was copied into it."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

PYTHON = os.environ.get("PYTHON") or sys.executable

SCRIPT = r"""
import os, pandas as pd, hestat
assert hestat.library_path.startswith(os.environ["TARGET"]), hestat.library_path
df = pd.DataFrame({"x": [1.0, 2.0, 4.0, None], "y": [3.0, 5.0, 7.0, 9.0]})
s = hestat.Study.create(df, stats="mean")
r = s.decrypt(hestat.compute(s.job(s.encrypt(df), stats="means")))
m = r[r.statistic == "mean"].set_index("variable")["value"]
assert abs(m["x"] - 7 / 3) < 1e-4 and abs(m["y"] - 6) < 1e-4, m  # 3 rows: no averaging of the noise
print("ok", hestat.library_path)
"""


def test_pip_install_then_import_without_paths(tmp_path):
    if subprocess.run([PYTHON, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("no pip for %s (scripts/install-deps.sh installs python3-pip)" % PYTHON)
    target = tmp_path / "site"
    run = subprocess.run([PYTHON, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--target",
                          str(target), os.path.join(REPO, "python")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (target / "hestat" / "_lib" / "libhestat.so.0").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("HESTAT_LIBRARY", "PYTHONPATH")}
    env.update(PYTHONPATH=str(target), TARGET=str(target))
    out = subprocess.run([PYTHON, "-c", SCRIPT], cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok ")
