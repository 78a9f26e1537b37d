"""Over HTTP against a real hestat-server on loopback."""
import os
import time

import pytest

import hestat


def test_round_trip_over_http(server, study, table, encrypted):
    client = hestat.Client(server.base, server.token)
    assert client.health()
    t0 = time.monotonic()
    sid = client.submit(study, encrypted)
    result = client.fetch(sid, stats="all")
    report = study.decrypt(result)
    elapsed = time.monotonic() - t0
    means = report[(report.statistic == "mean") & (report.group == "")].set_index("variable")["value"]
    for col in table.columns:
        assert abs(means[col] - table[col].mean()) < 1e-6, col
    print("\nround trip over HTTP (%d rows, %d columns): %.2f s" % (len(table), len(study.columns), elapsed))


def test_two_uploads_and_token_file(server, study, table, tmp_path):
    tf = tmp_path / "token"
    tf.write_text(server.token + "\n")
    client = hestat.Client(server.base, token_file=str(tf))
    a, b = table.iloc[:1000], table.iloc[1000:]
    pa = study.encrypt(a, out=str(tmp_path / "a.hst"))
    sid = client.submit(study.public_bytes(), pa)
    client.submit(study, study.encrypt(b), study_id=sid)
    out = client.fetch(sid, stats="means", out=str(tmp_path / "r.hst"))
    report = study.decrypt(out)
    mean = report[(report.statistic == "mean") & (report.variable == "sysBP")].value.iloc[0]
    assert abs(mean - table.sysBP.mean()) < 1e-6


def test_http_errors_and_token_hidden(server, study, encrypted, keys_dir):
    bad = hestat.Client(server.base, "wrong-token")
    assert "wrong-token" not in repr(bad) and server.token not in repr(hestat.Client(server.base, server.token))
    with pytest.raises(hestat.HestatError, match="HTTP 401"):
        bad.submit(study, encrypted)
    good = hestat.Client(server.base, server.token)
    with pytest.raises(hestat.HestatError, match="HTTP 404"):
        good.fetch("0" * 32)
    # a secret key is refused before any connection (the "server" does not even exist)
    nowhere = hestat.Client("http://127.0.0.1:9", server.token)
    with pytest.raises(hestat.HestatError):
        nowhere.submit(os.path.join(keys_dir, "secret.key"), encrypted)
    with pytest.raises(hestat.HestatError):
        nowhere.submit(study, study.public_bytes())  # a study where a table belongs
    with pytest.raises(hestat.HestatError, match="127.0.0.1:9"):
        nowhere.submit(study, encrypted)
