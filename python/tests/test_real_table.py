"""The real Framingham table (../shared/data beside the checkout), when present."""
import os

import pandas as pd
import pytest

import hestat
from conftest import REAL_CSV

pytestmark = pytest.mark.skipif(not os.path.exists(REAL_CSV), reason="no real table at %s" % REAL_CSV)


def test_real_table_means_over_http(server):
    df = pd.read_csv(REAL_CSV)
    study = hestat.Study.create(df, stats="mean,var,corr")
    client = hestat.Client(server.base, server.token)
    sid = client.submit(study, study.encrypt(df))
    report = study.decrypt(client.fetch(sid), compare=df)
    means = report[(report.statistic == "mean") & (report.group == "")].set_index("variable")
    assert len(means) == len(df.columns)
    for col in df.columns:
        assert abs(means.value[col] - df[col].mean()) < 1e-6, col
    corr = report[(report.statistic == "corr")].set_index("variable")["value"]
    assert abs(corr["sysBP:diaBP"] - df.sysBP.corr(df.diaBP)) < 2e-5
    study.close()
