"""Studies: keys, encryption, jobs and decryption over libhestat.so.

A Study holds the public study (parameters, schema, public and evaluation
keys) and, for the analyst, a handle to the secret key. The secret key lives
in C memory only: it is generated, saved (mode 0600), loaded and freed by the
library, and no Python object ever holds its bytes or prints it.
"""
import ctypes
import io
import math
import os
import warnings

import numpy as np
import pandas as pd

from . import _lib
from ._lib import HestatError, call, lib, take_bytes

DEFAULT_STATS = "mean,var,corr"
FACTOR_MAX = 2.0 ** 60
MAX_COLS, NAME_MAX = 512, 64  # STATS_MAX_COLS, STATS_NAME_MAX
STATS_EIO = -7
_C = ctypes


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def read_bytes(x, what):
    """bytes as they are; a path (str or PathLike) read whole."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    if _is_path(x):
        buf, n = _C.c_void_p(), _C.c_size_t()
        lib.stats_py_clear_error()
        rc = lib.stats_py_file_read(os.fsencode(x), _C.byref(buf), _C.byref(n))
        if rc:
            raise HestatError("%s: %s: cannot read it" % (what, os.fspath(x)), rc)
        return take_bytes(buf, n)
    raise TypeError("%s: bytes or a path, not %s" % (what, type(x).__name__))


def _write(path, data):
    lib.stats_py_clear_error()
    if lib.stats_py_file_write(os.fsencode(path), data, len(data)):
        raise HestatError("%s: cannot write it" % os.fspath(path))
    return path


def _frame(data):
    """A DataFrame from a DataFrame or a CSV path (NA or an empty cell missing)."""
    if isinstance(data, pd.DataFrame):
        return data
    if _is_path(data):
        return pd.read_csv(data, float_precision="round_trip")
    raise TypeError("a pandas DataFrame or a CSV path, not %s" % type(data).__name__)


class _Table:
    """A plaintext stats_table_t (owned)."""

    def __init__(self, ptr):
        self.ptr = ptr

    @classmethod
    def from_frame(cls, df):
        names = [str(c) for c in df.columns]
        if not 0 < len(names) <= MAX_COLS:
            raise HestatError("a table has 1 to %d columns, not %d" % (MAX_COLS, len(names)))
        for n in names:
            if not n or len(n.encode()) >= NAME_MAX:
                raise HestatError("column name %r: 1 to %d bytes" % (n, NAME_MAX - 1))
        for c in df.columns:
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
                raise HestatError("column %s is not numeric (hestat encrypts numbers; NA or NaN for missing)" % c)
        values = np.ascontiguousarray(df.to_numpy(dtype=np.float64, na_value=np.nan))
        arr = (_C.c_char_p * len(names))(*[n.encode() for n in names])
        out = _C.c_void_p()
        call("table", lib.stats_py_table_new, len(names), len(df), arr,
             values.ctypes.data_as(_C.POINTER(_C.c_double)), _C.byref(out))
        return cls(out)

    def names(self):
        return [lib.stats_py_table_name(self.ptr, i).decode() for i in range(lib.stats_py_table_ncols(self.ptr))]

    def free(self):
        if self.ptr:
            lib.stats_table_free(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()


def _pow2_at_least(x):
    f = 1.0
    while f < x and f <= FACTOR_MAX:
        f *= 2
    return f


def _raw_factors(df, headroom, ranges):
    """Each column's public factor, as hestat-client keygen chooses it."""
    ranges = dict(ranges or {})
    for name in ranges:
        if name not in df.columns:
            raise HestatError("ranges: the table has no column %s" % name)
    out, unranged = {}, []
    for name in df.columns:
        x = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
        x = x[~np.isnan(x)]
        if name in ranges:
            lo, hi = ranges[name]
            if lo > hi:
                raise HestatError("ranges: %s: low %g is above high %g" % (name, lo, hi))
            if x.size and (x.min() < lo or x.max() > hi):
                raise HestatError("column %s: values outside its declared range [%g, %g]" % (name, lo, hi))
            want = max(abs(lo), abs(hi))
        elif not x.size:
            unranged.append(str(name))
            continue
        elif np.all((x == 0) | (x == 1)):
            want = 1.0
        else:
            want = headroom * float(np.abs(x).max())
        f = _pow2_at_least(want)
        if f > FACTOR_MAX:
            raise HestatError("column %s: values up to %.6g need a factor above 2^60 (the largest a study holds)"
                              % (name, want))
        out[str(name)] = f
    if unranged:
        raise HestatError("no values to take a range from; declare ranges={COL: (LO, HI)} for: "
                          + ", ".join(unranged))
    return out


# hestat-client keygen's parameters for glm: (the library's stats_glm_bits).
GLM_POLY_DEGREE = 16384
GLM_COEFF_BITS = tuple((_C.c_int * 11).in_dll(lib, "stats_glm_bits"))


def _study_factors(raw, df, rawf, ranges, headroom, t):
    """The factors of the study's columns t (derived from raw), as keygen's."""
    ranges = dict(ranges or {})
    cols = [str(c) for c in df.columns]
    nan = float("nan")
    dbl = _C.c_double * len(cols)
    rf = dbl(*[rawf[c] for c in cols])
    lo = dbl(*[float(ranges[c][0]) if c in ranges else nan for c in cols])
    hi = dbl(*[float(ranges[c][1]) if c in ranges else nan for c in cols])
    out = (_C.c_double * len(t.names()))()
    lib.stats_study_factors(raw.ptr, rf, lo, hi, headroom, t.ptr, out)
    return list(out)


def _tokens(spec):
    """The spec's statistics, split at commas as hestat-client splits them
    (a quantile's probabilities "quantile:X:0.25,0.5" stay one token)."""
    buf = _C.create_string_buffer((spec or "").encode())
    lib.stats_spec_join(buf)
    return [t for t in buf.value.decode().split(",") if t]


class Study:
    """An encrypted-statistics study (hestat's study.hst, plus the secret key
    for the analyst who created it)."""

    def __init__(self, handle, secret_key=None, stats=DEFAULT_STATS, keys_dir=None):
        self._s = handle
        self._sk = secret_key
        self.stats = stats
        self.keys_dir = keys_dir

    # ---- making and loading -------------------------------------------------
    @classmethod
    def create(cls, data, stats=DEFAULT_STATS, keys_dir=None, *, poly_degree=8192, coeff_bits=(60, 40, 40, 60),
               headroom=2.0, ranges=None, force=False):
        """A new study (fresh secret key) for the schema of `data` (a DataFrame
        or a CSV path): columns, and each column's public range factor from its
        values (a power of two >= headroom * max |x|, 1 for 0/1 columns) or from
        ranges={COL: (LO, HI)}. stats: hestat-client's SPEC (mean, var, corr,
        group:COL, regress:Y~X1+X2, hist:COL:e0:e1:..., ttest:, table:,
        corrtest:, quantile:COL:p1,p2,..., moments:COL, glm:Y~X1+X2:family);
        derived columns are added here, with their factors as hestat-client
        keygen gives them. A spec with glm: and the default parameters gets
        keygen's glm parameters (poly_degree 16384, GLM_COEFF_BITS: 10 data primes). keys_dir:
        where secret.key (0600) and study.hst are saved, the same files as
        hestat-client keygen writes."""
        if not (headroom >= 1 and math.isfinite(headroom)):
            raise HestatError("headroom must be a finite number >= 1")
        if keys_dir is not None and not force:
            _refuse_existing_keys(keys_dir)
        if any(t.startswith("glm:") for t in _tokens(stats)) and poly_degree == 8192 and \
                tuple(coeff_bits) == (60, 40, 40, 60):
            poly_degree, coeff_bits = GLM_POLY_DEGREE, GLM_COEFF_BITS
        df = _frame(data)
        rawf = _raw_factors(df, headroom, ranges)
        err = _C.create_string_buffer(256)
        derived = _C.c_void_p()
        with _Table.from_frame(df) as raw:
            lib.stats_py_clear_error()
            rc = lib.stats_spec_derive(raw.ptr, (stats or "").encode(), _C.byref(derived), err, len(err))
            if rc:
                raise HestatError("stats: " + (err.value.decode() or _lib.message(rc)), rc)
            t = _Table(derived)
            factors = _study_factors(raw, df, rawf, ranges, headroom, t)
        with t:
            bits = (_C.c_int * len(coeff_bits))(*coeff_bits)
            ctx = _C.c_void_p()
            lib.stats_py_clear_error()
            rc = lib.stats_py_context_new(poly_degree, bits, len(coeff_bits), _C.byref(ctx))
            if rc:
                raise HestatError("parameters: " + lib.ckks_strerror(rc).decode(), rc)
            s, sk = _C.c_void_p(), _C.c_void_p()
            call("study", lib.stats_py_study_create, ctx, t.ptr, (_C.c_double * len(factors))(*factors),
                 _C.byref(sk), _C.byref(s))
        study = cls(s, sk, stats)
        if keys_dir is not None:
            study.save(keys_dir, force=True)
        return study

    @classmethod
    def load(cls, keys_dir, stats=DEFAULT_STATS):
        """The analyst's study from a keys directory (study.hst and
        secret.key, as hestat-client keygen or Study.create wrote them)."""
        study = cls.from_public(os.path.join(keys_dir, "study.hst"), stats)
        sk = _C.c_void_p()
        path = os.path.join(keys_dir, "secret.key")
        lib.stats_py_clear_error()
        rc = lib.stats_py_secret_key_load(study._s, os.fsencode(path), _C.byref(sk))
        if rc:
            study.close()
            if rc == STATS_EIO:
                raise HestatError("%s: cannot read it" % path, rc)
            raise HestatError(_lib.message(rc, path), rc)
        study._sk = sk
        study.keys_dir = os.fspath(keys_dir)
        return study

    @classmethod
    def from_public(cls, study, stats=DEFAULT_STATS):
        """A contributor's view: the public study (bytes or a study.hst path),
        enough to encrypt; no secret key, so no decrypt."""
        data = read_bytes(study, "study")
        s, used = _C.c_void_p(), _C.c_size_t()
        call("study", lib.stats_study_read, data, len(data), _C.byref(s), _C.byref(used))
        if used.value != len(data):
            lib.stats_study_free(s)
            raise HestatError("study: %d bytes after the study (not a study file)" % (len(data) - used.value))
        return cls(s, None, stats)

    def save(self, keys_dir, force=False):
        """secret.key (mode 0600, when this study holds one) and study.hst into keys_dir."""
        self._live()
        if not force:
            _refuse_existing_keys(keys_dir)
        os.makedirs(keys_dir, mode=0o700, exist_ok=True)
        if self._sk:
            path = os.path.join(keys_dir, "secret.key")
            lib.stats_py_clear_error()
            if lib.stats_py_secret_key_save(self._sk, os.fsencode(path)):
                raise HestatError("%s: cannot write the secret key" % path)
        _write(os.path.join(keys_dir, "study.hst"), self.public_bytes())
        self.keys_dir = os.fspath(keys_dir)
        return self.keys_dir

    def public_bytes(self):
        """study.hst: parameters, schema, public and evaluation keys (no secret key)."""
        self._live()
        buf, n = _C.c_void_p(), _C.c_size_t()
        call("study", lib.stats_study_write, self._s, _C.byref(buf), _C.byref(n))
        return take_bytes(buf, n)

    # ---- properties ---------------------------------------------------------
    @property
    def columns(self):
        self._live()
        return [lib.stats_py_study_name(self._s, i).decode() for i in range(lib.stats_py_study_ncols(self._s))]

    @property
    def factors(self):
        """Each column's public range factor F (values must lie in [-F, F])."""
        self._live()
        return {n: lib.stats_py_study_factor(self._s, i) for i, n in enumerate(self.columns)}

    @property
    def params(self):
        self._live()
        bits, most = lib.stats_py_study_modulus_bits(self._s), lib.stats_py_study_max_modulus_bits(self._s)
        return {"poly_degree": lib.stats_py_study_poly_degree(self._s),
                "data_primes": lib.stats_py_study_data_primes(self._s),
                "modulus_bits": bits, "max_modulus_bits_128": most,
                "security": "128-bit classical (HomomorphicEncryption.org table, ternary secret)"
                if bits <= most else "below 128 bits"}

    @property
    def has_secret_key(self):
        return bool(self._sk)

    def __repr__(self):
        if not self._s:
            return "<hestat.Study closed>"
        p = self.params
        cols = self.columns
        shown = ", ".join(cols[:6]) + (", ... (%d columns)" % len(cols) if len(cols) > 6 else "")
        return ("<hestat.Study N=%d, %d data primes, log2 Q=%d, %s; columns: %s; stats=%r; secret key: %s%s>"
                % (p["poly_degree"], p["data_primes"], p["modulus_bits"], p["security"].split(" (")[0], shown,
                   self.stats, "held (never shown)" if self._sk else "none",
                   ", keys_dir=%r" % self.keys_dir if self.keys_dir else ""))

    __str__ = __repr__

    # ---- encrypt, job, decrypt ----------------------------------------------
    def _derive(self, df):
        """The study's plaintext table from a raw one (derived columns rebuilt)."""
        err = _C.create_string_buffer(256)
        out = _C.c_void_p()
        with _Table.from_frame(df) as raw:
            lib.stats_py_clear_error()
            rc = lib.stats_py_derive(self._s, raw.ptr, _C.byref(out), err, len(err))
            if rc:
                raise HestatError(err.value.decode() or _lib.message(rc, "its columns do not match the study's "
                                                                         "schema"), rc)
        return _Table(out)

    def encrypt(self, data, out=None):
        """Encrypts a DataFrame (or a CSV path) with the study's public key:
        the encrypted table's bytes, or `out` (a path) after writing them there."""
        self._live()
        df = _frame(data)
        if not len(df):
            raise HestatError("no rows to encrypt")
        with self._derive(df) as t:
            buf, n = _C.c_void_p(), _C.c_size_t()
            call("encrypt", lib.stats_py_encrypt, self._s, t.ptr, _C.byref(buf), _C.byref(n))
            data = take_bytes(buf, n)
        return _write(out, data) if out is not None else data

    def job(self, tables, stats="all", out=None):
        """A job for hestat.compute or hestat-server compute: this study, the
        statistics ("all" or "means") and encrypted tables (bytes or paths)."""
        self._live()
        if isinstance(tables, (bytes, bytearray, memoryview, str, os.PathLike)):
            tables = [tables]
        blobs = [read_bytes(t, "table") for t in tables]
        kind = {"means": 1, "all": 2}.get(stats)
        if kind is None:
            raise HestatError("stats: 'all' or 'means', not %r" % (stats,))
        ptrs = (_C.c_void_p * len(blobs))(*[_C.cast(_C.c_char_p(b), _C.c_void_p) for b in blobs])
        lens = (_C.c_size_t * len(blobs))(*[len(b) for b in blobs])
        buf, n = _C.c_void_p(), _C.c_size_t()
        call("job", lib.stats_py_job, self._s, kind, ptrs, lens, len(blobs), _C.byref(buf), _C.byref(n))
        data = take_bytes(buf, n)
        return _write(out, data) if out is not None else data

    def check_table(self, table):
        """Rows of an encrypted table of this study (HestatError when it is not one)."""
        self._live()
        data = read_bytes(table, "table")
        rows = _C.c_uint64()
        call("table", lib.stats_py_table_check, self._s, data, len(data), _C.byref(rows))
        return rows.value

    def decrypt(self, result, compare=None, stats=None):
        """Decrypts a result (bytes or a path) into a DataFrame shaped like
        decrypted_results.csv: statistic, variable, group, value (and
        plaintext, abs_error, rel_error when `compare`, a DataFrame or CSV path
        of the plaintext table, is given). group is "" when ungrouped."""
        self._live()
        if not self._sk:
            raise HestatError("this study holds no secret key (Study.from_public): only its analyst decrypts")
        spec = self.stats if stats is None else stats
        data = read_bytes(result, "result")
        res = _C.c_void_p()
        call("decrypt", lib.stats_py_decrypt, self._s, self._sk, data, len(data), _C.byref(res))
        cmp = cmp_df = None
        try:
            if compare is not None:
                cmp_df = _frame(compare)
                cmp = self._derive(cmp_df)
            groups = self._groups(spec)
            garr = (_C.c_int * max(1, len(groups)))(*groups)
            buf, n = _C.c_void_p(), _C.c_size_t()
            call("report", lib.stats_py_report, self._s, res, garr, len(groups), cmp.ptr if cmp else None,
                 _C.byref(buf), _C.byref(n))
            text = take_bytes(buf, n).decode()
            rows = self._extra_rows(spec, res, cmp, cmp_df)
        finally:
            lib.stats_py_result_free(res)
            if cmp:
                cmp.free()
        return _report_frame(text, rows, cmp is not None)

    def glm(self, model, table, data, compare=False):
        """Fits a generalised linear model on an encrypted table of this study
        (bytes or a path), as hestat-client run fits glm: on its table: the
        rounds run in this process with the server's code, each evaluating
        encrypted totals at the current coefficients, of which only the totals
        are decrypted. model: "Y~X1+X2:binomial" or ":poisson" (a "glm:" in
        front is fine), or None for every glm: of the study's stats; the study
        must have been created with it (its complete-case columns, and the glm
        parameters that create chooses for a glm: spec). data: the analyst's
        plaintext table (DataFrame or CSV path): the regressors' ranges, and
        with compare=True the plaintext fit (IRLS) in columns plaintext,
        abs_error, rel_error. Returns a DataFrame like decrypt's: per model
        coef, se, z, p of each term (group "(intercept)", then the regressors),
        deviance, n, rounds, max_abs_score, approx_error (variable: the model);
        attrs["glm"] maps each model to its rounds, converged, server_s
        (seconds of the server's side), download (bytes of the rounds' totals)."""
        self._live()
        if not self._sk:
            raise HestatError("this study holds no secret key (Study.from_public): only its analyst fits a glm")
        if model is None:
            models = [t[4:] for t in _tokens(self.stats) if t.startswith("glm:")]
            if not models:
                raise HestatError("glm: no model given, and the study's stats have no glm:")
        else:
            models = [model[4:] if model.startswith("glm:") else model]
        blob = read_bytes(table, "table")
        texts, info = [], {}
        with self._derive(_frame(data)) as t:
            for m in models:
                buf, n = _C.c_void_p(), _C.c_size_t()
                out = (_C.c_double * 6)()
                err = _C.create_string_buffer(512)
                lib.stats_py_clear_error()
                rc = lib.stats_py_glm(self._s, self._sk, blob, len(blob), t.ptr, m.encode(), 1 if compare else 0,
                                      _C.byref(buf), _C.byref(n), out, err, len(err))
                if rc:
                    raise HestatError("glm:%s: %s" % (m, err.value.decode() or _lib.message(rc)), rc)
                texts.append(take_bytes(buf, n).decode())
                info[m] = {"rounds": int(out[0]), "converged": bool(out[1]), "server_s": out[2],
                           "download": int(out[3])}
                if not out[1]:
                    warnings.warn("glm:%s: not converged after %d rounds" % (m, int(out[0])))
        cols = ["statistic", "variable", "group", "value"] + (["plaintext", "abs_error", "rel_error"] if compare
                                                              else [])
        df = _csv_rows("".join(texts), cols[3:], cols)
        df.attrs["glm"] = info
        return df

    # ---- report pieces --------------------------------------------------------
    def _groups(self, spec):
        cols = self.columns
        wanted = [t[6:] for t in _tokens(spec) if t.startswith("group:")]
        out = []
        for g in wanted:
            ind = [i for i, n in enumerate(cols) if n.startswith(g + "=")]
            if ind:
                out += ind
            elif g in cols:
                out.append(cols.index(g))
            else:
                raise HestatError("no such column to group by: %s" % g)
        if not wanted and "TenYearCHD" in cols:
            out.append(cols.index("TenYearCHD"))
        return out

    def _extra_rows(self, spec, res, cmp, cmp_df):
        """Rows after the statistics, as hestat-client decrypt --stats SPEC
        writes them: tuples, or CSV text of rows finished in C. Regressions
        and tests need pairwise sums: a result of stats 'means' has none, and
        they are left out of its report (quantiles and moments too, which
        hestat-client decrypt refuses on one). glm: is fitted by Study.glm,
        not here."""
        rows = []
        pairs = bool(lib.stats_py_result_have_pairs(res))
        for tok in _tokens(spec):
            kind = tok.split(":")[0]
            if kind in ("quantile", "moments") and pairs:
                rows.append(self._shape_rows(tok, res, cmp))
            elif kind == "regress":
                rows += self._regression_rows(tok[8:], res, cmp)
            elif kind == "hist":
                rows += self._histogram_rows(tok[5:], res, cmp)
            elif kind in ("ttest", "table", "corrtest") and pairs:
                rows += getattr(self, "_%s_rows" % kind)(tok, res, cmp_df)
        return rows

    # ---- tests with p-values (as apps/client/client_inference.c) ----------------
    def _two_columns(self, tok):
        parts = tok.split(":", 2)
        if len(parts) < 3:
            raise HestatError("stats %s: needs two column names, NAME:COL1:COL2" % tok)
        cols = self.columns
        for n in parts[1:]:
            if n not in cols:
                raise HestatError("stats %s: the study has no column %s" % (tok, n))
        if parts[1] == parts[2]:
            raise HestatError("stats %s: needs two different columns" % tok)
        return cols.index(parts[1]), cols.index(parts[2]), parts[1], parts[2]

    def _ttest_rows(self, tok, res, ref):
        c, g, cn, gn = self._two_columns(tok)
        sq, total = lib.stats_py_result_value(res, g, g, 3), lib.stats_py_result_sum(res, g)
        if self.factors[gn] != 1 or abs(sq - total) > 0.5:
            raise HestatError("stats %s: the group column is not a 0/1 column: %s" % (tok, gn))
        m = []
        for level in (0, 1):
            out = (_C.c_double * 3)()
            if lib.stats_py_group_moments(res, g, level, c, out):
                raise HestatError("stats %s: cannot group by %s" % (tok, gn))
            m.append(out)
        got = _ttest(m[0], m[1])
        if got is None:
            raise HestatError("stats %s: each group needs at least 2 values and some spread" % tok)
        want = [0.0] * 6
        if ref is not None:
            w = []
            for level in (0, 1):
                x = ref.loc[ref[gn] == level, cn].dropna().to_numpy(dtype=np.float64)
                w.append((_C.c_double * 3)(len(x), x.mean() if len(x) else 0.0, x.var(ddof=1) if len(x) > 1 else 0.0))
            want = _ttest(w[0], w[1]) or want
        rows = []
        for k, name in enumerate(("welch", "pooled")):
            for i, stat in enumerate(("t", "df", "p")):
                rows.append((stat, cn, "%s:%s" % (name, gn), got[3 * k + i], want[3 * k + i]))
        return rows

    def _table_rows(self, tok, res, ref):
        a, b, an, bn = self._two_columns(tok)
        cols = self.columns
        ia = [i for i, n in enumerate(cols) if n.startswith(an + "=")][:16]
        ib = [i for i, n in enumerate(cols) if n.startswith(bn + "=")][:16]
        if not ia or not ib:
            raise HestatError("stats %s: the study was not created for this table (create it with table:...); no "
                              "indicators of %s" % (tok, an if not ia else bn))
        var = "%s:%s" % (an, bn)
        level = lambda i: float(cols[i].split("=", 1)[1])  # noqa: E731
        cells, want, rows = [], [], []
        for i in ia:
            for j in ib:
                cells.append(float(round(lib.stats_py_result_value(res, i, j, 0))))
                w = 0.0
                if ref is not None:
                    w = float(((ref[an] == level(i)) & (ref[bn] == level(j))).sum())
                want.append(w)
                rows.append(("count", var, "%s;%s" % (cols[i], cols[j]), cells[-1], w))
        got = _chisq(cells, len(ia), len(ib))
        if got is None:
            raise HestatError("stats %s: the table needs at least two levels of each column with counts" % tok)
        wx = (_chisq(want, len(ia), len(ib)) if ref is not None else None) or [0.0] * 3
        rows.append(("n", var, "", sum(cells), sum(want)))
        for i, stat in enumerate(("chisq", "df", "p")):
            rows.append((stat, var, "", got[i], wx[i]))
        return rows

    def _corrtest_rows(self, tok, res, ref):
        x, y, xn, yn = self._two_columns(tok)
        r, n = lib.stats_py_result_value(res, x, y, 1), float(round(lib.stats_py_result_value(res, x, y, 2)))
        got = (_C.c_double * 3)()
        if lib.stats_py_corr_test(r, n, got):
            raise HestatError("stats %s: needs more than 2 complete pairs and |r| < 1" % tok)
        wr = wn = 0.0
        want = [0.0] * 3
        if ref is not None:
            both = ref[[xn, yn]].dropna()
            wn = float(len(both))
            wr = float(both[xn].corr(both[yn])) if len(both) > 1 else 0.0
            out = (_C.c_double * 3)()
            if not lib.stats_py_corr_test(wr, wn, out):
                want = list(out)
        var = "%s:%s" % (xn, yn)
        rows = [("r", var, "", r, wr), ("n", var, "", n, wn)]
        rows += [(stat, var, "", got[i], want[i]) for i, stat in enumerate(("t", "df", "p"))]
        return rows

    def _regression_rows(self, model, res, cmp):
        cols = self.columns
        if "~" not in model:
            raise HestatError("stats: a regression needs Y~X1+..., not %s" % model)
        y, xs = model.split("~", 1)
        names = [y] + xs.split("+")
        idx = []
        for n in names:
            if "cc:" + n not in cols:
                raise HestatError("stats regress:%s: the study was not created for this regression (no column "
                                  "cc:%s)" % (model, n))
            idx.append(cols.index("cc:" + n))
        if not lib.stats_py_result_have_pairs(res):
            return []  # a means-only result: no pairwise sums to solve with (as groups)
        k = len(idx) - 1

        def fit(r, t):
            coef, se, o3 = (_C.c_double * (k + 1))(), (_C.c_double * (k + 1))(), (_C.c_double * 3)()
            rc = lib.stats_py_regress(r, t, idx[0], (_C.c_size_t * k)(*idx[1:]), k, coef, se, o3)
            return None if rc else (list(coef), list(se), list(o3))

        got = fit(res, None)
        if got is None:
            raise HestatError("regression %s: singular or too few complete cases" % model)
        ref = fit(None, cmp.ptr) if cmp else None
        rows = []
        df = got[2][0] - (k + 1)
        rdf = ref[2][0] - (k + 1) if ref else 0.0
        for i in range(k + 1):
            term = "(intercept)" if i == 0 else names[i]
            t = got[0][i] / got[1][i]
            rt = ref[0][i] / ref[1][i] if ref else 0.0
            rows.append(("coef", model, term, got[0][i], ref[0][i] if ref else 0.0))
            rows.append(("se", model, term, got[1][i], ref[1][i] if ref else 0.0))
            rows.append(("t", model, term, t, rt))
            rows.append(("p", model, term, lib.stats_py_t_pvalue(t, df), lib.stats_py_t_pvalue(rt, rdf) if ref else 0.0))
        rows.append(("r2", model, "", got[2][1], ref[2][1] if ref else 0.0))
        rows.append(("n", model, "", got[2][0], ref[2][0] if ref else 0.0))
        rows.append(("df", model, "", df, rdf))
        return rows

    def _shape_rows(self, tok, res, cmp):
        """quantile:COL:p,... or moments:COL: the rows stats/report_rows.c
        writes (as hestat-client decrypt's), CSV text."""
        buf, n = _C.c_void_p(), _C.c_size_t()
        err = _C.create_string_buffer(512)
        lib.stats_py_clear_error()
        rc = lib.stats_py_shape_rows(self._s, res, tok.encode(), cmp.ptr if cmp else None, _C.byref(buf),
                                     _C.byref(n), err, len(err))
        if rc:
            raise HestatError("stats %s: %s" % (tok, err.value.decode() or _lib.message(rc)), rc)
        return take_bytes(buf, n).decode()

    def _histogram_rows(self, spec, res, cmp):
        col = spec.split(":")[0]
        rows = [("hist", n, "", float(round(lib.stats_py_result_sum(res, i))),
                 lib.stats_py_table_sum(cmp.ptr, i) if cmp else 0.0)
                for i, n in enumerate(self.columns) if n.startswith(col + " in [")]
        if not rows:
            raise HestatError("stats hist:%s: the study has no bins of %s (create it with hist:...)" % (spec, col))
        return rows

    # ---- lifetime -------------------------------------------------------------
    def _live(self):
        if not self._s:
            raise HestatError("this study is closed")

    def close(self):
        """Frees the study and wipes the secret key held in C memory."""
        if getattr(self, "_sk", None):
            lib.ckks_secret_key_free(self._sk)
            self._sk = None
        if getattr(self, "_s", None):
            lib.stats_study_free(self._s)
            self._s = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a hestat.Study is not pickled (it may hold a secret key); save it with save(keys_dir)")


def _ttest(a3, b3):
    out = (_C.c_double * 6)()
    return None if lib.stats_py_ttest(a3, b3, out) else list(out)


def _chisq(cells, rows, cols):
    out = (_C.c_double * 3)()
    return None if lib.stats_py_chisq((_C.c_double * len(cells))(*cells), rows, cols, out) else list(out)


def _refuse_existing_keys(keys_dir):
    for name in ("secret.key", "study.hst"):
        p = os.path.join(keys_dir, name)
        if os.path.lexists(p):
            raise HestatError("%s already exists: creating a study there would replace its keys (results of that "
                              "study could no longer be decrypted); pass force=True, or use another directory" % p)


def _g15(v):
    return float("%.15g" % v)


def _report_frame(text, extra, compare):
    num = ["value"] + (["plaintext", "abs_error", "rel_error"] if compare else [])
    df = _csv_rows(text, num)
    parts, recs = [df], []
    for item in extra:
        if isinstance(item, str):  # rows written in C, as hestat-client writes them
            if not item:
                continue
            if recs:
                parts.append(pd.DataFrame.from_records(recs, columns=df.columns))
                recs = []
            parts.append(_csv_rows(item, num, df.columns))
            continue
        stat, var, grp, v, want = item
        r = {"statistic": stat, "variable": var, "group": grp, "value": _g15(v)}
        if compare:
            err = abs(v - want)
            r.update(plaintext=_g15(want), abs_error=float("%.3g" % err),
                     rel_error=float("%.3g" % (err / abs(want) if abs(want) > 0 else err)))
        recs.append(r)
    if recs:
        parts.append(pd.DataFrame.from_records(recs, columns=df.columns))
    parts = [p for p in parts if len(p)] or [df]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _csv_rows(text, num, columns=None):
    """Report rows as a frame: text with its header line, or without one
    (rows to go under `columns`)."""
    return pd.read_csv(io.StringIO(text), header=None if columns is not None else "infer",
                       names=list(columns) if columns is not None else None, keep_default_na=False,
                       na_values={c: ["nan", "-nan", "NaN", "NA"] for c in num},  # NA: suppressed (disclosure policy)
                       dtype={"statistic": str, "variable": str, "group": str, **{c: np.float64 for c in num}})


def compute(job, out=None):
    """What hestat-server computes: a job (bytes or a path) in, the encrypted
    result's bytes out (or written to `out`). Needs no secret key."""
    data = read_bytes(job, "job")
    buf, n = _C.c_void_p(), _C.c_size_t()
    call("compute", lib.stats_job_run, data, len(data), _C.byref(buf), _C.byref(n), None)
    result = take_bytes(buf, n)
    return _write(out, result) if out is not None else result
