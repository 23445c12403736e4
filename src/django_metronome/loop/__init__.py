"""
The scheduler loop: claim what is due, start it, record how it ended.

:mod:`.scheduler` puts the scheduler together from its parts: declaring jobs
(:mod:`.declare`), the cycle (:mod:`.cycle`: look, claim, back off), handing
claimed fires to executors (:mod:`.dispatch`), running one fire
(:mod:`.run`), the ledger thread (:mod:`.outcomes`), the heart and the clock
(:mod:`.heart`). :mod:`.pool` and :mod:`.executors` run the fires;
:mod:`.flavours` holds the Blocking, Background and AsyncIO schedulers;
:mod:`.startrules` says where a scheduler may start; :mod:`.context` tells a
job which fire it runs; :mod:`.faults` holds the fault suite's fault points.

It uses the store and the time core below it, never the admin or the command
line above it.
"""
