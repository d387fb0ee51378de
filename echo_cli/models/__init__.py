"""Model kinds, one object each, and the Keras models built from them.

A kind (base.Kind) is registered here with its builder and its properties: whether it is
recurrent, whether it can be stateful, whether it can give an output per step, its receptive
field where it has one, and the cell `inspect` recomputes. Checks read those properties and
name the kinds that qualify from this registry, so adding a kind is one module and one line
below. factory.py builds and compiles the model a config asks for; keras_internals.py holds
everything that leans on Keras beyond its documented API; cells.py recomputes recurrent
states in numpy. Nothing here knows which task a model is for: a task describes its inputs and
outputs as a base.Signature.
"""

from __future__ import annotations

from echo_cli.models import esn, lru, s6
from echo_cli.models.base import Kind
from echo_cli.models.convolutional import CONV1D, TCN
from echo_cli.models.feedforward import MLP
from echo_cli.models.recurrent import GRU, LSTM, SIMPLE_RNN

KINDS: dict[str, Kind] = {kind.name: kind for kind in (LSTM, GRU, SIMPLE_RNN, MLP, CONV1D, TCN,
                                                       lru.LRU, s6.S6, esn.ESN)}


def register_layers() -> list:
    """Register every kind's own Keras layers with Keras, so that a model.keras holding them
    loads in safe mode: call it after importing Keras, before load_model. Building a model
    registers them too."""
    return [kind.layers() for kind in KINDS.values() if kind.layers is not None]


def get(name: str) -> Kind:
    """The registered kind of a model.kind name (KeyError for an unknown one)."""
    return KINDS[name]


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def having(prop: str) -> list[str]:
    """The kinds whose property `prop` is true (or set), in registry order."""
    return [name for name, kind in KINDS.items() if getattr(kind, prop)]


def words(kinds: list[str]) -> str:
    """"lstm, gru or simple_rnn": kinds as a message names them."""
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
