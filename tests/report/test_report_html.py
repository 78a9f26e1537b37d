"""hestat-client decrypt --html in a real browser: headless Chromium loads the
page with every host unresolvable, draws every chart with no console message
and no error, and every number it shows is the number in
decrypted_results.csv. Run by make test (make python-test); skipped, saying
so, where no Chromium is installed (scripts/install-deps.sh installs it)."""
import csv
import html.parser
import math
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.environ.get("HESTAT_BIN") or os.path.join(REPO, "build", "bin")
SPEC = "mean,var,corr,group:education,regress:sysBP~age+BMI,hist:age:30:40:50:60:70,ttest:sysBP:TenYearCHD"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = 4  # correlation heatmap, histogram of age, groups by education, accuracy


def chromium(*args, timeout=180):
    """Headless Chromium with no network at all (every host unresolvable)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def client(*args, cwd):
    return subprocess.run([os.path.join(BIN, "hestat-client"), *args], cwd=cwd, check=True, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    client("sample", "--rows", "1500", "--seed", "3", "--out", "plain.csv", cwd=d)
    client("keygen", "--schema", "plain.csv", "--keys", "keys", "--stats", SPEC, cwd=d)
    client("encrypt", "--study", "keys/study.hst", "--in", "plain.csv", "--out", "table.hst", cwd=d)
    client("job", "--study", "keys/study.hst", "--out", "job.hst", "table.hst", cwd=d)
    subprocess.run([os.path.join(BIN, "hestat-server"), "compute", "job.hst", "--out", "result.hst"], cwd=d,
                   check=True, capture_output=True)
    # A logistic model's rows (as hestat-client glm writes them; the values are
    # made up here: the page is under test) join through --add-rows.
    model, rows = "TenYearCHD~age+sysBP:binomial", []
    for i, term in enumerate(["(intercept)", "age", "sysBP"]):
        for st, v in (("coef", -7.5 + 3.3 * i), ("se", 0.41 + i), ("z", -18.25 + 4 * i), ("p", 2.5e-9 * (i + 1))):
            rows.append(f"{st},{model},{term},{v!r},{v!r},0,0")
    rows += [f"deviance,{model},,1234.5625,1234.5625,0,0", f"n,{model},,1490,1490,0,0", f"rounds,{model},,6,7,1,0.143"]
    (d / "glm.csv").write_text("statistic,variable,group,value,plaintext,abs_error,rel_error\n" + "\n".join(rows) + "\n")
    client("decrypt", "--keys", "keys", "--in", "result.hst", "--out", "decrypted_results.csv", "--stats", SPEC,
           "--compare", "plain.csv", "--html", "report.html", "--add-rows", "glm.csv", cwd=d)
    return d


class Cells(html.parser.HTMLParser):
    """Every element carrying a number of the CSV (data-value), with its text."""

    def __init__(self):
        super().__init__()
        self.cells, self.acc, self.body, self.errors = [], [], {}, None
        self._open, self._text = None, ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "pre" and a.get("id") == "page-errors":
            self.errors = a
        if "data-value" in a or "data-acc" in a:
            self._open, self._text = a, ""

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            (self.cells if "data-value" in self._open else self.acc).append((self._open, self._text))
            self._open = None


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_page_is_self_contained(report):
    page = (report / "report.html").read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # nothing that a browser would fetch: no src/href attributes, no CSS url()
    tags = re.findall(r"<(?:script|link|img|iframe|source|audio|video)\b[^>]*>", page)
    assert not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t)], tags
    assert "Chart.js v" in page  # the library is inside the page


@pytest.mark.skipif(not CHROMIUM, reason="no chromium (Debian's chromium; scripts/install-deps.sh installs it)")
def test_chromium_draws_the_page_with_no_error(report):
    run = chromium("--dump-dom", (report / "report.html").as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    console = [l for l in run.stderr.splitlines() if ":CONSOLE" in l]
    assert not console, console
    p = Cells()
    p.feed(run.stdout)
    assert p.body.get("data-rendered") == "yes", p.body
    assert p.body.get("data-charts") == str(CHARTS)
    assert p.errors is not None and "hidden" in p.errors  # #page-errors stayed empty
    (report / "dom.html").write_text(run.stdout)


@pytest.mark.skipif(not CHROMIUM, reason="no chromium (Debian's chromium; scripts/install-deps.sh installs it)")
def test_numbers_shown_are_the_csv(report):
    dom = report / "dom.html"
    if not dom.exists():
        dom.write_text(chromium("--dump-dom", (report / "report.html").as_uri()).stdout)
    p = Cells()
    p.feed(dom.read_text())
    rows = {(r["statistic"], r["variable"], r["group"]): r for r in read_csv(report / "decrypted_results.csv")}
    seen = set()
    for a, text in p.cells:
        key = (a["data-stat"], a["data-var"], a["data-group"])
        assert key in rows, key
        want = rows[key][a["data-col"]]
        assert a["data-value"] == want, (key, a["data-value"], want)
        if want == "NA":  # suppressed by the study's disclosure policy: shown as NA
            assert text.strip() == "NA", (key, text)
            seen.add(key)
            continue
        v, shown = float(want), float(text)
        if math.isfinite(v):
            assert abs(shown - v) <= 1e-7 * max(abs(v), 1e-300) + 1e-12, (key, text, want)
        seen.add(key)
    # what must be on the page: every column's count, mean and sd; every
    # non-derived correlation; every bin; every regression term; the tests
    plain = [r for r in rows.values() if r["group"] == "" and r["statistic"] in ("count", "mean", "sd")
             and not re.search(r"=| in \[|^cc:", r["variable"])]
    assert len(plain) >= 16 * 3
    missing = [k for k in rows if k not in seen and (rows[k] in plain or k[0] in ("hist", "coef", "se", "t", "p", "r2")
                                                     or k[0].startswith("welch") or k[0].startswith("pooled"))]
    assert not missing, missing[:10]
    # the logistic model: z (not t) per term, then its deviance, n and rounds
    glm = [k for k in rows if k[1].endswith(":binomial")]
    assert len(glm) == 15 and all(k in seen for k in glm), [k for k in glm if k not in seen]
    corr = [k for k in rows if k[0] == "corr" and not re.search(r"=| in \[|cc:", k[1])]
    assert corr and all(k in seen for k in corr)
    # the accuracy table: the largest relative error of each statistic, from the CSV
    for a, text in p.acc:
        if "data-rel" in a:
            errs = [float(r["rel_error"]) for r in rows.values()
                    if r["statistic"] == a["data-acc"] and r["rel_error"] != "NA"]  # NA: suppressed
            errs = [e for e in errs if math.isfinite(e)]
            assert float(a["data-rel"]) == pytest.approx(max(errs + [0.0]), rel=1e-12), a
