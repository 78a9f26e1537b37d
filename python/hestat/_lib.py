"""Loads libhestat.so with ctypes and declares the functions the package calls.

The library is looked for, in this order:
  1. $HESTAT_LIBRARY, a path to libhestat.so (explicit override);
  2. hestat/_lib/libhestat.so.0 next to this file (what ``pip install ./python``
     and ``make python`` copy from build/lib when it has been built);
  3. build/lib/libhestat.so.0 of the source tree this package sits in (running
     from a checkout: python/hestat -> ../../build/lib);
  4. the dynamic loader's search path (``make install`` into /usr/local/lib).
Nothing is compiled at import.
"""
import ctypes
import ctypes.util
import os

c_void_p, c_char_p, c_size_t, c_int, c_double = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_int, ctypes.c_double)
P = ctypes.POINTER

_HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libhestat.so.0"


def _candidates():
    env = os.environ.get("HESTAT_LIBRARY")
    if env:
        yield env
        return
    yield os.path.join(_HERE, "_lib", SONAME)
    yield os.path.join(_HERE, os.pardir, os.pardir, "build", "lib", SONAME)
    found = ctypes.util.find_library("hestat")
    yield found or SONAME


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return ctypes.CDLL(os.path.normpath(path) if os.sep in path else path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("hestat: cannot load libhestat.so; build it (make) and install the package "
                      "(make python), or set HESTAT_LIBRARY. Tried: " + "; ".join(tried))


lib, path = _load()

_PROTOTYPES = {
    # name: (restype, argtypes)
    "stats_strerror": (c_char_p, [c_int]),
    "stats_error": (c_char_p, []),
    "ckks_strerror": (c_char_p, [c_int]),
    "stats_py_free": (None, [c_void_p]),
    "stats_py_clear_error": (None, []),
    "stats_table_free": (None, [c_void_p]),
    "stats_study_free": (None, [c_void_p]),
    "ckks_secret_key_free": (None, [c_void_p]),
    "stats_py_result_free": (None, [c_void_p]),
    "stats_py_table_new": (c_int, [c_size_t, c_size_t, P(c_char_p), P(c_double), P(c_void_p)]),
    "stats_py_table_ncols": (c_size_t, [c_void_p]),
    "stats_py_table_name": (c_char_p, [c_void_p, c_size_t]),
    "stats_py_table_sum": (c_double, [c_void_p, c_size_t]),
    "stats_spec_derive": (c_int, [c_void_p, c_char_p, P(c_void_p), c_char_p, c_size_t]),
    "stats_py_context_new": (c_int, [c_size_t, P(c_int), c_size_t, P(c_void_p)]),
    "stats_py_study_create": (c_int, [c_void_p, c_void_p, P(c_double), P(c_void_p), P(c_void_p)]),
    "stats_py_study_ncols": (c_size_t, [c_void_p]),
    "stats_py_study_name": (c_char_p, [c_void_p, c_size_t]),
    "stats_py_study_factor": (c_double, [c_void_p, c_size_t]),
    "stats_py_study_poly_degree": (c_size_t, [c_void_p]),
    "stats_py_study_data_primes": (c_size_t, [c_void_p]),
    "stats_py_study_modulus_bits": (c_int, [c_void_p]),
    "stats_py_study_max_modulus_bits": (c_int, [c_void_p]),
    "stats_study_write": (c_int, [c_void_p, P(c_void_p), P(c_size_t)]),
    "stats_study_read": (c_int, [c_void_p, c_size_t, P(c_void_p), P(c_size_t)]),
    "stats_py_secret_key_save": (c_int, [c_void_p, c_char_p]),
    "stats_py_secret_key_load": (c_int, [c_void_p, c_char_p, P(c_void_p)]),
    "stats_py_file_read": (c_int, [c_char_p, P(c_void_p), P(c_size_t)]),
    "stats_py_file_write": (c_int, [c_char_p, c_void_p, c_size_t]),
    "stats_py_derive": (c_int, [c_void_p, c_void_p, P(c_void_p), c_char_p, c_size_t]),
    "stats_py_encrypt": (c_int, [c_void_p, c_void_p, P(c_void_p), P(c_size_t)]),
    "stats_py_table_check": (c_int, [c_void_p, c_void_p, c_size_t, P(ctypes.c_uint64)]),
    "stats_py_job": (c_int, [c_void_p, c_int, P(c_void_p), P(c_size_t), c_size_t, P(c_void_p), P(c_size_t)]),
    "stats_job_run": (c_int, [c_void_p, c_size_t, P(c_void_p), P(c_size_t), c_void_p]),
    "stats_py_decrypt": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t, P(c_void_p)]),
    "stats_py_result_have_pairs": (c_int, [c_void_p]),
    "stats_py_result_sum": (c_double, [c_void_p, c_size_t]),
    "stats_py_report": (c_int, [c_void_p, c_void_p, P(c_int), c_size_t, c_void_p, P(c_void_p), P(c_size_t)]),
    "stats_py_regress": (c_int, [c_void_p, c_void_p, c_size_t, P(c_size_t), c_size_t, P(c_double), P(c_double),
                                 P(c_double)]),
    "stats_py_t_pvalue": (c_double, [c_double, c_double]),
    "stats_py_group_moments": (c_int, [c_void_p, c_size_t, c_int, c_size_t, P(c_double)]),
    "stats_py_ttest": (c_int, [P(c_double), P(c_double), P(c_double)]),
    "stats_py_chisq": (c_int, [P(c_double), c_size_t, c_size_t, P(c_double)]),
    "stats_py_corr_test": (c_int, [c_double, c_double, P(c_double)]),
    "stats_py_result_value": (c_double, [c_void_p, c_size_t, c_size_t, c_int]),
    "stats_spec_join": (None, [c_char_p]),
    "stats_study_factors": (None, [c_void_p, P(c_double), P(c_double), P(c_double), c_double, c_void_p,
                                   P(c_double)]),
    "stats_py_shape_rows": (c_int, [c_void_p, c_void_p, c_char_p, c_void_p, P(c_void_p), P(c_size_t), c_char_p,
                                    c_size_t]),
    "stats_py_glm": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_char_p, c_int, P(c_void_p),
                             P(c_size_t), P(c_double), c_char_p, c_size_t]),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        raise ImportError("hestat: %s (%s) lacks %s: an older build? run make" % (path, lib._name, _name))
    _f.restype = _res
    _f.argtypes = _args


class HestatError(Exception):
    """An error from hestat; the message is hestat's own."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


def message(rc, what=None):
    text = (lib.stats_strerror(rc) or b"error").decode("utf-8", "replace")
    detail = (lib.stats_error() or b"").decode("utf-8", "replace")
    parts = [p for p in (what, text, detail) if p]
    return ": ".join(parts)


def check(rc, what=None):
    if rc:
        raise HestatError(message(rc, what), rc)


def call(what, fn, *args):
    """Runs a library function returning a stats status; raises HestatError
    with hestat's message (cleared first, so never an older call's)."""
    lib.stats_py_clear_error()
    check(fn(*args), what)


def take_bytes(buf, length):
    """Copies a malloc'ed buffer into bytes and frees it."""
    try:
        return ctypes.string_at(buf, length.value) if length.value else b""
    finally:
        lib.stats_py_free(buf)
