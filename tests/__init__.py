from tests import clock_shift

# METRONOME_CLOCK_SHIFT=+365d runs this process (and, as they import this package
# too, the subprocesses the tests start) a year ahead: see tests/clock_shift.py.
# SQLite's 'now' moves with it, so schedulers keep the library's default clock
# (the database's) in such a run, as in any other.
clock_shift.start_from_environment()
