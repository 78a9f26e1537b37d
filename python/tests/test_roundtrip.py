"""Create, encrypt, compute, decrypt in one process: pandas in, pandas out."""
import os
import pickle
import stat
import subprocess

import numpy as np
import pandas as pd
import pytest

import hestat
from conftest import BIN, SPEC


def ungrouped(report, statistic):
    r = report[(report.statistic == statistic) & (report.group == "")]
    return r.set_index("variable")["value"]


def test_decrypted_means_match_pandas(study, table, result):
    report = study.decrypt(result)
    assert list(report.columns) == ["statistic", "variable", "group", "value"]
    means = ungrouped(report, "mean")
    for col in table.columns:
        assert abs(means[col] - table[col].mean()) < 1e-6, col
    counts = ungrouped(report, "count")
    for col in table.columns:
        assert counts[col] == table[col].notna().sum()


def test_variances_correlations_groups(study, table, result):
    report = study.decrypt(result)
    sd = ungrouped(report, "sd")
    for col in table.columns:
        assert abs(sd[col] - table[col].std()) < 1e-5 * max(1, table[col].std()), col
    corr = ungrouped(report, "corr")
    # pandas' corr is pairwise complete, as hestat's
    assert abs(corr["age:sysBP"] - table["age"].corr(table["sysBP"])) < 2e-5
    assert abs(corr["sysBP:BMI"] - table["sysBP"].corr(table["BMI"])) < 2e-5
    g = report[(report.statistic == "mean") & (report.group == "TenYearCHD=1") & (report.variable == "sysBP")]
    assert len(g) == 0  # group:education given, so the default TenYearCHD grouping is off
    g = report[(report.statistic == "mean") & (report.group == "education=2") & (report.variable == "sysBP")]
    assert abs(g.value.iloc[0] - table.loc[table.education == 2, "sysBP"].mean()) < 2e-5


def test_regression_and_histogram(study, table, result):
    report = study.decrypt(result)
    coef = report[(report.statistic == "coef") & (report.variable == "sysBP~age+BMI")].set_index("group")["value"]
    cc = table[["sysBP", "age", "BMI"]].dropna()
    X = np.column_stack([np.ones(len(cc)), cc.age, cc.BMI])
    want, *_ = np.linalg.lstsq(X, cc.sysBP.to_numpy(), rcond=None)
    assert np.allclose(coef[["(intercept)", "age", "BMI"]].to_numpy(), want, rtol=1e-4, atol=1e-4)
    hist = report[report.statistic == "hist"].set_index("variable")["value"]
    assert hist["age in [30:40)"] == ((table.age >= 30) & (table.age < 40)).sum()
    assert hist["age in [60:70]"] == ((table.age >= 60) & (table.age <= 70)).sum()
    assert hist.sum() == table.age.notna().sum()


def test_compare_columns(study, table, result):
    report = study.decrypt(result, compare=table)
    assert list(report.columns) == ["statistic", "variable", "group", "value", "plaintext", "abs_error", "rel_error"]
    means = report[(report.statistic == "mean") & (report.group == "")]
    assert (means.rel_error < 1e-7).all()
    assert np.allclose(means.set_index("variable").plaintext[table.columns], table.mean())


def test_same_report_as_hestat_client(study, keys_dir, result, table, tmp_path):
    """The package and hestat-client decrypt give the same rows from the same files."""
    res, csv, out = tmp_path / "result.hst", tmp_path / "plain.csv", tmp_path / "decrypted_results.csv"
    res.write_bytes(result)
    table.to_csv(csv, index=False, na_rep="NA")
    subprocess.run([os.path.join(BIN, "hestat-client"), "decrypt", "--keys", keys_dir, "--in", str(res), "--out",
                    str(out), "--stats", SPEC, "--compare", str(csv)], check=True, capture_output=True)
    num = ["value", "plaintext", "abs_error", "rel_error"]
    cli = pd.read_csv(out, keep_default_na=False, na_values={c: ["nan", "-nan", "NA"] for c in num},
                      dtype={"statistic": str, "variable": str, "group": str})
    py = study.decrypt(str(res), compare=str(csv))
    assert list(py.columns) == list(cli.columns)
    assert py[["statistic", "variable", "group"]].equals(cli[["statistic", "variable", "group"]])
    # Identical but for p-values of the regression (double here, long double there).
    for c in num:
        assert np.allclose(py[c], cli[c], rtol=1e-12, atol=1e-300, equal_nan=True), c


def test_files_and_keys_dir(study, keys_dir, table, tmp_path):
    assert stat.S_IMODE(os.stat(os.path.join(keys_dir, "secret.key")).st_mode) == 0o600
    again = hestat.Study.load(keys_dir, stats="mean")
    assert again.columns == study.columns and again.has_secret_key
    path = again.encrypt(table.head(50), out=str(tmp_path / "t.hst"))
    assert again.check_table(path) == 50
    job = again.job([path], stats="means", out=str(tmp_path / "job.hst"))
    res = hestat.compute(job, out=str(tmp_path / "res.hst"))
    report = again.decrypt(res)
    assert abs(ungrouped(report, "mean")["age"] - table.head(50).age.mean()) < 1e-4  # 50 rows: a sum error of ~2e-4
    assert "corr" not in set(report.statistic)  # a means-only result
    again.close()


def test_csv_path_input(tmp_path, table):
    csv = tmp_path / "t.csv"
    table.to_csv(csv, index=False, na_rep="NA")
    s = hestat.Study.create(str(csv), stats="mean")
    report = s.decrypt(hestat.compute(s.job(s.encrypt(str(csv)), stats="means")))
    assert abs(ungrouped(report, "mean")["BMI"] - table.BMI.mean()) < 1e-6


def test_secret_key_never_in_repr(study, keys_dir):
    with open(os.path.join(keys_dir, "secret.key"), "rb") as f:
        secret = f.read()
    text = repr(study) + str(study) + repr(study.__dict__)
    assert "secret key: held (never shown)" in text
    assert secret[-64:].hex() not in text and "0x" not in repr(study)
    with pytest.raises(TypeError):
        pickle.dumps(study)
    assert secret not in study.public_bytes()


def test_errors_carry_hestat_messages(study, table, tmp_path, keys_dir):
    # a value beyond the column's public range
    bad = table.copy()
    bad.loc[3, "age"] = 1e6
    with pytest.raises(hestat.HestatError, match=r"row 4, column age: 1e\+06 is outside"):
        study.encrypt(bad)
    # a column the study does not have
    with pytest.raises(hestat.HestatError, match="age"):
        study.encrypt(table.drop(columns=["age"]))
    with pytest.raises(hestat.HestatError, match="not numeric"):
        study.encrypt(table.assign(age=["x"] * len(table)))
    with pytest.raises(hestat.HestatError, match="1 to 512 columns"):
        hestat.Study.create(pd.DataFrame({"c%d" % i: [1.0, 2.0] for i in range(513)}))
    with pytest.raises(hestat.HestatError, match="1 to 63 bytes"):
        hestat.Study.create(pd.DataFrame({"x" * 64: [1.0, 2.0]}))
    with pytest.raises(hestat.HestatError, match="unknown statistic 'median'"):
        hestat.Study.create(table, stats="mean,median")
    with pytest.raises(hestat.HestatError, match="already exists"):
        hestat.Study.create(table, keys_dir=keys_dir)
    with pytest.raises(hestat.HestatError, match="cannot read"):
        study.decrypt(str(tmp_path / "missing.hst"))
    with pytest.raises(hestat.HestatError):
        hestat.compute(b"not a job")
    # another study's key: refused, never garbage
    other = hestat.Study.create(table, stats=SPEC)
    res = hestat.compute(other.job([other.encrypt(table)]))
    with pytest.raises(hestat.HestatError, match="schema|study|digest"):
        study.decrypt(res)
    # a keys directory whose secret.key is another study's: refused at load
    mixed = tmp_path / "mixed"
    other.save(str(mixed))
    (mixed / "study.hst").write_bytes(study.public_bytes())
    with pytest.raises(hestat.HestatError, match="does not belong to this study"):
        hestat.Study.load(str(mixed))
    public = hestat.Study.from_public(study.public_bytes())
    with pytest.raises(hestat.HestatError, match="no secret key"):
        public.decrypt(res)
    assert public.check_table(public.encrypt(table.head(10))) == 10
    with pytest.raises(hestat.HestatError):
        hestat.Study.from_public(os.path.join(keys_dir, "secret.key"))


def test_tests_with_p_values(study, table, result):
    report = study.decrypt(result)
    get = lambda st, v, g="": report[(report.statistic == st) & (report.variable == v) & (report.group == g)].value.iloc[0]  # noqa: E731
    # Welch's t of sysBP between TenYearCHD 0 and 1, from numpy
    a = table.loc[table.TenYearCHD == 0, "sysBP"].dropna()
    b = table.loc[table.TenYearCHD == 1, "sysBP"].dropna()
    va, vb = a.var() / len(a), b.var() / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    assert abs(get("t", "sysBP", "welch:TenYearCHD") - t) < 1e-4 * abs(t)
    assert abs(get("df", "sysBP", "welch:TenYearCHD") - df) < 1e-3 * df
    # the cells of education x TenYearCHD and Pearson's chi-square
    ct = pd.crosstab(table.education, table.TenYearCHD).to_numpy(dtype=float)
    for i, e in enumerate([1, 2, 3, 4]):
        for j, c in enumerate([0, 1]):
            assert get("count", "education:TenYearCHD", "education=%d;TenYearCHD=%d" % (e, c)) == ct[i, j]
    expect = ct.sum(1, keepdims=True) * ct.sum(0, keepdims=True) / ct.sum()
    assert abs(get("chisq", "education:TenYearCHD") - ((ct - expect) ** 2 / expect).sum()) < 1e-6
    assert get("df", "education:TenYearCHD") == 3
    # the t-test of a correlation
    both = table[["age", "sysBP"]].dropna()
    r = both.age.corr(both.sysBP)
    assert get("n", "age:sysBP") == len(both)
    assert abs(get("t", "age:sysBP") - r * np.sqrt((len(both) - 2) / (1 - r * r))) < 1e-3
    assert 0 <= get("p", "age:sysBP") < 1e-10
