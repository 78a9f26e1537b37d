"""hestat: statistics on encrypted tables (RNS-CKKS), from Python.

    import pandas as pd, hestat
    df = pd.read_csv("framingham.csv")
    study = hestat.Study.create(df, stats="mean,var,corr", keys_dir="keys")
    table = study.encrypt(df)                      # bytes, public key only
    result = hestat.compute(study.job([table]))    # what the server does
    report = study.decrypt(result)                 # pandas, tidy

The library is libhestat.so, loaded with ctypes (see hestat._lib for where
it is looked for; HESTAT_LIBRARY overrides).
"""
from ._lib import HestatError
from ._lib import path as library_path
from .client import Client
from .study import Study, compute

__all__ = ["Study", "Client", "compute", "HestatError", "library_path"]
__version__ = "0.1.0"
