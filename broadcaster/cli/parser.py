"""argparse in Vietnamese ("cách dùng:", "lỗi:", "tùy chọn:") for the officers who type `loa`.

argparse asks gettext for every word it prints (`_("usage: ")`), through its module-level `_` and
`ngettext`. Installing a gettext catalogue would change every parser in the process; instead our parser
swaps those two names for its own lookups while it builds, parses and formats, and puts them back after,
so other parsers (pytest's, a library's) stay as they were. A message argparse adds in a later Python
and we have not translated stays English. Single-threaded use only, as a command line is.

Standard library only: `loa agent` on a speaker's small computer parses with this too.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

# The msgids of argparse 3.11-3.13 (read from Lib/argparse.py), as printed to a person.
ARGPARSE_VI: dict[str, str] = {
    "usage: ": "cách dùng: ",
    "positional arguments": "đối số vị trí",
    "options": "tùy chọn",
    "optional arguments": "tùy chọn",  # before Python 3.10
    "subcommands": "lệnh con",
    "show this help message and exit": "hiện hướng dẫn này rồi thoát",
    "show program's version number and exit": "hiện phiên bản rồi thoát",
    "%(prog)s: error: %(message)s\n": "%(prog)s: lỗi: %(message)s\n",
    "%(prog)s: warning: %(message)s\n": "%(prog)s: cảnh báo: %(message)s\n",
    "%(heading)s:": "%(heading)s:",
    " (default: %(default)s)": " (mặc định: %(default)s)",
    "argument %(argument_name)s: %(message)s": "đối số %(argument_name)s: %(message)s",
    "the following arguments are required: %s": "thiếu các đối số bắt buộc: %s",
    "one of the arguments %s is required": "cần một trong các đối số %s",
    "invalid choice: %(value)r (choose from %(choices)s)": (
        "lựa chọn không hợp lệ: %(value)r (chọn một trong %(choices)s)"
    ),
    "invalid %(type)s value: %(value)r": "giá trị %(type)s không hợp lệ: %(value)r",
    "unrecognized arguments: %s": "đối số không nhận ra: %s",
    "expected one argument": "cần một giá trị",
    "expected at most one argument": "cần nhiều nhất một giá trị",
    "expected at least one argument": "cần ít nhất một giá trị",
    "ambiguous option: %(option)s could match %(matches)s": "tùy chọn mơ hồ: %(option)s có thể là %(matches)s",
    "not allowed with argument %s": "không dùng được cùng đối số %s",
    "ignored explicit argument %r": "bỏ qua giá trị %r",
    "unexpected option string: %s": "tùy chọn không mong đợi: %s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "không có lệnh %(parser_name)r (các lệnh: %(choices)s)",
    "can't open '%(filename)s': %(error)s": "không mở được '%(filename)s': %(error)s",
    "option '%(option)s' is deprecated": "tùy chọn '%(option)s' đã lỗi thời",
    "argument '%(argument_name)s' is deprecated": "đối số '%(argument_name)s' đã lỗi thời",
    "command '%(parser_name)s' is deprecated": "lệnh '%(parser_name)s' đã lỗi thời",
}
# What argparse calls a value's type ("invalid int value"), as a person would say what to type.
TYPE_NAMES_VI: dict[str, str] = {"int": "số nguyên", "float": "số", "Path": "đường dẫn tệp"}

# ngettext's msgids: (singular, plural) -> the Vietnamese form (Vietnamese has no plural).
ARGPARSE_VI_PLURAL: dict[tuple[str, str], str] = {
    ("expected %s argument", "expected %s arguments"): "cần %s giá trị",
    ("conflicting option string: %s", "conflicting option strings: %s"): "tùy chọn bị trùng: %s",
}


def _vi(message: Any) -> Any:
    # argparse also calls _() on a parser's title and description, which may be None or ours already.
    return ARGPARSE_VI.get(message, message) if isinstance(message, str) else message


def _vi_plural(singular: str, plural: str, n: int) -> str:
    return ARGPARSE_VI_PLURAL.get((singular, plural), singular if n == 1 else plural)


@contextmanager
def _speaking(lang: str) -> Iterator[None]:
    """argparse's words in `lang` for the duration; English (argparse's own) needs no swap."""
    if lang != "vi":
        yield
        return
    saved: tuple[Callable[..., Any], Callable[..., Any]] = (argparse._, argparse.ngettext)  # type: ignore[attr-defined]
    argparse._ = _vi  # type: ignore[attr-defined]
    argparse.ngettext = _vi_plural  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


class LoaArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that says argparse's own words in `lang` (Vietnamese by default); its
    subcommands' parsers inherit the language."""

    def __init__(self, *args: Any, lang: str = "vi", **kwargs: Any) -> None:
        self.lang = lang
        with _speaking(lang):  # the group titles and the -h help are translated when they are made
            super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", functools.partial(type(self), lang=self.lang))
        with _speaking(self.lang):
            return super().add_subparsers(**kwargs)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        with _speaking(self.lang):  # "unrecognized arguments" is said here, after parse_known_args
            return super().parse_args(args, namespace)

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        with _speaking(self.lang):
            return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        with _speaking(self.lang):
            return super().format_usage()

    def format_help(self) -> str:
        with _speaking(self.lang):
            return super().format_help()

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        """argparse names the type in Python's words ("giá trị int không hợp lệ"); say what to type. The
        types named here are plain converters, so their only refusal is that generic one."""
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError:
            name = TYPE_NAMES_VI.get(getattr(action.type, "__name__", ""))
            if self.lang != "vi" or name is None:
                raise
            raise argparse.ArgumentError(action, f"cần {name}, không phải {arg_string!r}") from None

    def error(self, message: str) -> NoReturn:
        with _speaking(self.lang):
            super().error(message)
        raise AssertionError("argparse's error() returned")  # it exits; this satisfies NoReturn
