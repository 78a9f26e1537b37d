"""Fixtures: a synthetic table (pandas), a study made once per session, and a
real hestat-server on loopback (as tests/testutil.c starts one).

Programs come from $HESTAT_BIN (make test sets it), else build/bin of this
checkout; the package is imported from this checkout (python/) unless
HESTAT_TEST_INSTALLED=1 asks for the installed one."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
if os.environ.get("HESTAT_TEST_INSTALLED") != "1":
    sys.path.insert(0, os.path.join(REPO, "python"))

import hestat  # noqa: E402

BIN = os.environ.get("HESTAT_BIN") or os.path.join(REPO, "build", "bin")
REAL_CSV = os.path.join(REPO, os.pardir, "shared", "data", "framingham_heart_disease_raw.csv")


def make_table(rows=4000, seed=7):
    """Ages, blood pressure, a 0/1 outcome, a 1..4 category, with missing values.
    CKKS sums carry noise of about 1e-4 (times the column's factor / 256): with
    4000 rows a mean is within about 2e-7 of the exact one, well inside the 1e-6
    the tests ask; derived statistics get looser bounds (their errors grow
    with the conditioning: correlations, group means, regressions)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(30, 71, rows).astype(float)
    sbp = 90 + 0.9 * age + rng.normal(0, 12, rows)
    bmi = rng.normal(26, 4, rows)
    chd = (rng.random(rows) < 0.15 + 0.004 * (age - 30)).astype(float)
    edu = rng.integers(1, 5, rows).astype(float)
    sbp[rng.random(rows) < 0.05] = np.nan
    bmi[rng.random(rows) < 0.03] = np.nan
    edu[rng.random(rows) < 0.02] = np.nan
    return pd.DataFrame({"age": age, "sysBP": sbp, "BMI": bmi, "education": edu, "TenYearCHD": chd})


@pytest.fixture(scope="session")
def table():
    return make_table()


SPEC = ("mean,var,corr,group:education,regress:sysBP~age+BMI,hist:age:30:40:50:60:70,ttest:sysBP:TenYearCHD,"
        "table:education:TenYearCHD,corrtest:age:sysBP")


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("keys") / "k")


@pytest.fixture(scope="session")
def study(table, keys_dir):
    s = hestat.Study.create(table, stats=SPEC, keys_dir=keys_dir)
    yield s
    s.close()


@pytest.fixture(scope="session")
def encrypted(study, table):
    return study.encrypt(table)


@pytest.fixture(scope="session")
def result(study, encrypted):
    return hestat.compute(study.job([encrypted]))


class Server:
    def __init__(self, base, token, proc, spool):
        self.base, self.token, self.proc, self.spool = base, token, proc, spool


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """hestat-server serve on 127.0.0.1 (a free port), a temporary spool and a
    token file (0600)."""
    d = tmp_path_factory.mktemp("server")
    token = "py-test-token-%d" % os.getpid()
    tf = d / "token"
    tf.write_text(token + "\n")
    os.chmod(tf, 0o600)
    log = open(d / "server.log", "w+")
    prog = os.path.join(BIN, "hestat-server")
    if not os.path.exists(prog):
        pytest.fail("%s is missing: run make first" % prog)
    proc = subprocess.Popen([prog, "serve", "--listen", "127.0.0.1:0", "--spool", str(d / "spool"),
                             "--token-file", str(tf)], stdout=log, stderr=subprocess.STDOUT)
    base = None
    for _ in range(200):
        log.seek(0)
        for line in log.read().splitlines():
            if "listening on" in line:
                base = next(w for w in line.split() if "://" in w)
        if base or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not base:
        proc.kill()
        log.seek(0)
        pytest.fail("hestat-server did not start: " + log.read())
    yield Server(base, token, proc, d / "spool")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
