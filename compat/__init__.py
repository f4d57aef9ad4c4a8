"""kstub's compatibility suite: named scenarios run by real Kafka clients against any bootstrap address.

`python -m compat` from a checkout, `kstub compat` once installed (the folder
is installed as ``kstub.compat``, as ``protocol/`` is ``kstub.protocol``).
"""
