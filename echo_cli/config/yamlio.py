"""YAML as echo-cli reads it: plain numbers, no surprises, and nothing unbounded.

    parse_yaml("1e-3")        # 0.001 (PyYAML's YAML 1.1 would give the string '1e-3')
    parse_yaml("1:30")        # '1:30', not 90 (no base-60 numbers)
    parse_yaml("yes")         # 'yes', not True (booleans are true and false)
    read_yaml_file(path)      # refuses duplicate keys, aliases and files over 1 MiB

Numbers are decimal integers and decimal or exponent floats, as a user means them: YAML 1.1's
sexagesimal `1:30`, octal `010`, `1_000` and `0x1F` stay strings, so the schema reports them.
A key given twice is an error (YAML would keep the last one silently). Aliases (`*name`) are
refused, so a small file cannot expand into a huge value. This module imports nothing from
echo_cli.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_FILE_BYTES = 1 << 20  # a config is a page of keys; 1 MiB is far more than enough
MAX_DIGITS = 100  # an integer longer than this is a mistake (Python refuses past 4300)
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    # YAML 1.1's implicit int, float and bool rules are replaced below by plain ones: decimal
    # numbers, and true or false (not yes, no, on, off).
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in rules if tag not in (INT, FLOAT, BOOL)]
        for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, "aliases (*name) are not allowed in a config; write "
                                "the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        """A value its explicit tag cannot make (`!!int "0x10"`, `!!bool "maybe"`) is a YAML
        error at its line, not a Python one."""
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception:  # noqa: BLE001 - constructors raise ValueError, KeyError, TypeError...
            tag = node.tag.removeprefix("tag:yaml.org,2002:")
            shown = node.value if isinstance(node, yaml.ScalarNode) else type(node).__name__
            raise ConstructorError(None, None, f"{str(shown)[:40]!r} cannot be read as "
                                   f"!!{tag}; write the value without the tag",
                                   node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeConstructor reports an unhashable key itself
            if key in seen:
                raise ConstructorError(None, None, f"the key {key!r} appears twice; keep one",
                                       key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _Loader, node) -> int:
    text = loader.construct_scalar(node)
    if len(text.lstrip("+-")) > MAX_DIGITS:
        raise ConstructorError(None, None, f"an integer of {len(text):,} digits is too long "
                               f"(at most {MAX_DIGITS})", node.start_mark)
    return int(text)  # decimal, leading zeros included: 010 is 10


_Loader.add_implicit_resolver(INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Loader.add_implicit_resolver(BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    FLOAT,
    re.compile(r"""^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
               |[-+]?[0-9]+[eE][-+]?[0-9]+
               |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
_Loader.add_constructor(INT, _construct_int)


def parse_yaml(text: str) -> Any:
    """Parse YAML text with echo-cli's rules (yaml.YAMLError on a problem, a value nested too
    deeply included)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except RecursionError:
        raise yaml.YAMLError("it is nested too deeply") from None
    except yaml.YAMLError:
        raise
    except Exception:  # noqa: BLE001 - a tag's constructor failing where its node is unknown
        raise yaml.YAMLError("it holds a tagged value (!!set, !!omap, ...) whose contents that "
                             "tag cannot take; write the value without the tag") from None


def describe_error(err: yaml.YAMLError) -> str:
    """A YAML error as ` at line L, column C: problem`."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or (str(err) if type(err) is yaml.YAMLError
                                                else "it is not valid YAML")
    return f"{where}: {problem}"


def read_yaml_file(path: Path) -> tuple[Any, str | None]:
    """A YAML file's value, or (None, the reason it cannot be read) as a sentence fragment."""
    try:
        if not path.is_file():  # a device (/dev/zero), a FIFO or a socket never ends
            return None, "is not a regular file; give a YAML config file"
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, (f"is {size / (1 << 20):.1f} MiB; a config is at most "
                          f"{MAX_FILE_BYTES >> 20} MiB of YAML")
        return parse_yaml(path.read_text(encoding="utf-8")), None
    except yaml.YAMLError as err:
        return None, "is not valid YAML" + describe_error(err)
    except UnicodeDecodeError:
        return None, "is not a text file; give a YAML config"
    except OSError as err:
        return None, f"cannot be read ({err.strerror})"
