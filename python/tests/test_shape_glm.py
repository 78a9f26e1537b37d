"""quantile:, moments: and glm: rows from the package: the same rows as
hestat-client gives on the same files, and close to independent references
(numpy's type-7 quantiles, moments of the plaintext, a numpy IRLS)."""
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

import hestat
from conftest import BIN, make_table

SHAPE_SPEC = "mean,var,corr,quantile:sysBP:0.1,0.25,0.5,0.9,moments:sysBP,quantile:age:0.5,moments:age"
GLM_MODEL = "TenYearCHD~age+sysBP:binomial"
NUM = ["value", "plaintext", "abs_error", "rel_error"]


def cli(*args):
    return subprocess.run([os.path.join(BIN, "hestat-client")] + [str(a) for a in args], check=True,
                          capture_output=True, text=True)


def read_report(path):
    return pd.read_csv(path, keep_default_na=False, na_values={c: ["nan", "-nan", "NA"] for c in NUM},
                       dtype={"statistic": str, "variable": str, "group": str})


def same_rows(py, ref):
    assert list(py.columns) == list(ref.columns)
    assert py[["statistic", "variable", "group"]].reset_index(drop=True).equals(
        ref[["statistic", "variable", "group"]].reset_index(drop=True))
    for c in NUM:
        if c in py:
            assert np.allclose(py[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-12, atol=1e-300,
                               equal_nan=True), c


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    """A study of quantiles and moments (800 rows), its table as a CSV, and a
    result of stats 'all'."""
    d = tmp_path_factory.mktemp("shape")
    table = make_table(rows=800, seed=11)
    csv = d / "plain.csv"
    table.to_csv(csv, index=False, na_rep="NA")
    study = hestat.Study.create(table, stats=SHAPE_SPEC, keys_dir=str(d / "keys"))
    result = hestat.compute(study.job([study.encrypt(table)]), out=str(d / "result.hst"))
    yield study, table, csv, result, d
    study.close()


def test_quantile_moments_rows_as_hestat_client(shape):
    study, table, csv, result, d = shape
    # the same study columns and factors as keygen gives for the spec
    cli("keygen", "--schema", csv, "--keys", d / "cli-keys", "--stats", SHAPE_SPEC)
    theirs = hestat.Study.from_public(str(d / "cli-keys" / "study.hst"))
    assert theirs.factors == study.factors
    theirs.close()
    # the same rows as decrypt gives from the same keys and result
    out = d / "decrypted_results.csv"
    cli("decrypt", "--keys", d / "keys", "--in", result, "--out", out, "--stats", SHAPE_SPEC, "--compare", csv)
    ref = read_report(out)
    py = study.decrypt(result, compare=str(csv))
    same_rows(py, ref)
    assert {"quantile", "bin_width", "bins", "skewness", "kurtosis"} <= set(py.statistic)


def test_quantiles_within_a_bin_of_numpy(shape):
    study, table, _, result, _ = shape
    report = study.decrypt(result)
    for col, probs in (("sysBP", [0.1, 0.25, 0.5, 0.9]), ("age", [0.5])):
        rows = report[report.variable == col]
        width = rows[rows.statistic == "bin_width"].value.iloc[0]
        assert 0 < width < 0.02 * (table[col].max() - table[col].min())
        x = table[col].dropna().to_numpy()
        assert rows[(rows.statistic == "n") & (rows.group == "")].value.iloc[0] == len(x)
        for p in probs:
            got = rows[(rows.statistic == "quantile") & (rows.group == "p=%g" % p)].value.iloc[0]
            assert abs(got - np.quantile(x, p)) <= width, (col, p)  # numpy's default is R's type 7


def test_skewness_kurtosis_match_numpy(shape):
    study, table, _, result, _ = shape
    report = study.decrypt(result)
    for col in ("sysBP", "age"):
        x = table[col].dropna().to_numpy()
        u = x - x.mean()
        m2, m3, m4 = (u ** 2).mean(), (u ** 3).mean(), (u ** 4).mean()
        get = lambda st: report[(report.statistic == st) & (report.variable == col)].value.iloc[0]  # noqa: E731
        assert abs(get("skewness") - m3 / m2 ** 1.5) < 1e-4, col
        assert abs(get("kurtosis") - m4 / m2 ** 2) < 1e-4, col


def test_shape_rows_left_out_or_refused_with_reasons(shape):
    study, table, _, full, _ = shape
    # a means-only result: left out, as the package leaves out regressions and tests
    means = hestat.compute(study.job([study.encrypt(table.head(100))], stats="means"))
    assert not {"quantile", "skewness"} & set(study.decrypt(means).statistic)
    with pytest.raises(hestat.HestatError, match="not created for this quantile"):
        study.decrypt(full, stats="quantile:BMI:0.5")
    with pytest.raises(hestat.HestatError, match="not created for these moments"):
        study.decrypt(full, stats="moments:BMI")


def irls(X, y, rounds=25):
    """Logistic regression by IRLS in numpy: coefficients, standard errors, deviance."""
    b = np.zeros(X.shape[1])
    for _ in range(rounds):
        mu = 1 / (1 + np.exp(-X @ b))
        w = mu * (1 - mu)
        b = b + np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y - mu))
    mu = 1 / (1 + np.exp(-X @ b))
    info = X.T @ (X * (mu * (1 - mu))[:, None])
    dev = -2 * np.sum(y * np.log(mu) + (1 - y) * np.log(1 - mu))
    return b, np.sqrt(np.diag(np.linalg.inv(info))), dev


def test_glm_rows_as_hestat_client_run_and_irls(tmp_path):
    """hestat-client run fits the model on its table; the package, given the
    same keys and encrypted table, gives the same rows; both agree with a
    numpy IRLS. A study the package creates for glm: gets keygen's glm
    parameters and factors."""
    table = make_table(rows=300, seed=5)[["age", "sysBP", "TenYearCHD"]]  # few columns: a short run at N = 16384
    csv = tmp_path / "plain.csv"
    table.to_csv(csv, index=False, na_rep="NA")
    spec = "mean,glm:" + GLM_MODEL
    cli("run", "--csv", csv, "--stats", spec, "--out", tmp_path / "run")
    ref = read_report(tmp_path / "run" / "decrypted_results.csv")
    ref = ref[ref.variable == GLM_MODEL]
    study = hestat.Study.load(str(tmp_path / "run" / "keys"), stats=spec)
    py = study.glm(GLM_MODEL, str(tmp_path / "run" / "table.hst"), str(csv), compare=True)
    same_rows(py, ref)
    assert py.attrs["glm"][GLM_MODEL]["converged"]
    assert study.glm(None, str(tmp_path / "run" / "table.hst"), table).value.equals(py.value)  # the study's glm:

    cc = table[["TenYearCHD", "age", "sysBP"]].dropna()
    X = np.column_stack([np.ones(len(cc)), cc.age, cc.sysBP])
    b, se, dev = irls(X, cc.TenYearCHD.to_numpy())
    get = lambda st: py[py.statistic == st].set_index("group").value  # noqa: E731
    terms = ["(intercept)", "age", "sysBP"]
    assert np.allclose(get("coef")[terms].to_numpy(), b, rtol=1e-4, atol=1e-5)
    assert np.allclose(get("se")[terms].to_numpy(), se, rtol=1e-4)
    assert abs(get("deviance").iloc[0] - dev) < 1e-4 * dev
    assert get("n").iloc[0] == len(cc)

    mine = hestat.Study.create(table, stats=spec)
    assert mine.params["poly_degree"] == 16384 and mine.params["data_primes"] == 10
    assert mine.factors == study.factors
    with pytest.raises(hestat.HestatError, match="glm:TenYearCHD~BMI:binomial"):
        mine.glm("TenYearCHD~BMI:binomial", mine.encrypt(table), table)
    mine.close()
    study.close()
