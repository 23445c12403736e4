from tests import clock_shift

# METRONOME_CLOCK_SHIFT=+365d runs this process (and, as they import this package
# too, the subprocesses the tests start) a year ahead: see tests/clock_shift.py.
clock_shift.start_from_environment()

if clock_shift.shift():
    # Only Python's clock moves; the database servers' (and SQLite's 'now') stay on
    # the real day. Scheduling by the database's clock, the library's default,
    # would undo the shift: in such a run every scheduler trusts its (shifted)
    # process clock. Tests of the database clock itself ask for it explicitly.
    from django_metronome.conf import DEFAULTS

    DEFAULTS["CLOCK"] = "local"
