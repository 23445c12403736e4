"""
Moved: trigger, zone and datetime JSON to :mod:`django_metronome.time.codecs`, a
job's JSON and its checks to :mod:`django_metronome.store.jobs`. This path keeps
working.
"""

from .store.jobs import (
    STATE_VERSION,
    MetronomeJob,
    callable_name,
    check_json_arguments,
    check_json_value,
    decode_job,
    encode_job,
    func_reference,
)
from .time.codecs import (
    JSONDict,
    TriggerCodec,
    decode_datetime,
    decode_trigger,
    decode_tz,
    encode_datetime,
    encode_trigger,
    encode_tz,
    register_trigger_codec,
    trigger_timezone,
)

__all__ = [
    "STATE_VERSION",
    "JSONDict",
    "MetronomeJob",
    "TriggerCodec",
    "callable_name",
    "check_json_arguments",
    "check_json_value",
    "decode_datetime",
    "decode_job",
    "decode_trigger",
    "decode_tz",
    "encode_datetime",
    "encode_job",
    "encode_trigger",
    "encode_tz",
    "func_reference",
    "register_trigger_codec",
    "trigger_timezone",
]
