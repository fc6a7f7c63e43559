"""What ``pipeline --help`` and ``pipeline COMMAND --help`` say, in one table, written
for the office administrator who runs the CLI: one line on what each command does
and an example to copy. The parser (``cli.py``) and the commands registered by the
web and notify stages all get their texts from here, so none is left without one.

Also the "did you mean" for a mistyped command.
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from typing import Any, NoReturn

PROGRAM = ("Turns the units' activity reports into WeChat article drafts, lets the editors "
           "approve them, pushes the approved stories once a day and tells people when a "
           "story is running late.")
PROGRAM_EPILOG = """\
a first session (in the workspace folder, where config.toml is):
  pipeline submit reports/*.toml            read reports; one line per report
  pipeline queue                            what waits for the editors
  pipeline approve 1 --by 王编辑            approve draft 1
  pipeline push                             today's push, now
  pipeline serve                            the web desk at http://127.0.0.1:8000/

'pipeline COMMAND --help' explains one command, with an example.
Exit codes: 0 done, 1 something was refused (the message says what and why), 2 the
command line itself was wrong."""

# command -> (one line, example lines)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("Create a new, empty workspace folder: config.toml with comments, the "
             "article templates and the drafts/ and published/ folders.",
             "pipeline init /srv/jdb-pipeline"),
    "migrate": ("Bring the database schema up to date and exit; safe to run from several "
                "processes at once (each process also migrates when it starts).",
                "pipeline migrate"),
    "submit": ("Read report files and turn each report into a draft for the editors. "
               "Files may be .toml, .json, .md (with a front matter), or .csv / .xlsx "
               "ledgers with one report per row. A file with a problem is reported with "
               "the file, row, field and what to change; the good reports are kept.",
               "pipeline submit 麓谷街道-0620.toml ledger.xlsx"),
    "queue": ("List the drafts waiting for an editor, the most urgent first, with how long "
              "is left before each is late and the review stage each waits at; --for NAME "
              "lists only the drafts NAME may sign.", "pipeline queue --for 刘书记"),
    "show": ("Show one draft in full: what the unit reported, the files, the deadline, "
             "every step of its history and, once pushed, its WeChat record.",
             "pipeline show 12"),
    "approve": ("Sign the draft's open review stage (初审, 复审, 终审 as config.toml lists "
                "them; one person signs one stage): it goes out with the next daily push "
                "once every stage is signed.", "pipeline approve 12 --by 王编辑"),
    "reject": ("Reject a draft: it will not be published. Say why; the unit sees the note.",
               'pipeline reject 12 --by 王编辑 --note "与第9篇重复"'),
    "request-changes": ("Send a draft back to its unit with a note saying what to change; "
                        "the unit corrects it through its report link.",
                        'pipeline request-changes 12 --note "请补充活动照片"'),
    "withdraw": ("Take an approved story out of a push that has not been sent to WeChat "
                 "yet; it goes back to the queue.",
                 'pipeline withdraw 12 --note "领导要求暂缓"'),
    "edit": ("Open a draft's text (Markdown) in your text editor ($EDITOR) and rebuild the "
             "article when you save and close it.", "EDITOR=vi pipeline edit 12"),
    "push": ("Run today's push now (the scheduler does this at push_time by itself). "
             "Never pushes twice on one day. --dry-run only shows what would go out.",
             "pipeline push --dry-run"),
    "check": ("Look for stories that are due soon or already late, record an alert for "
              "each once, and email the people responsible.", "pipeline check"),
    "release": ("Say that a push WeChat could not confirm did NOT go out (you checked in "
                "the WeChat console): its stories go with the next push.",
                "pipeline release 2026-06-20"),
    "confirm-sent": ("Say that the day's push was sent by hand from the WeChat console "
                     "(draftbox mode), or that a push WeChat could not confirm did go out.",
                     "pipeline confirm-sent 2026-06-20"),
    "wechat": ("WeChat account tools: 'wechat check' tests the AppID, the secret and the "
               "server's IP whitelist.", "pipeline wechat check"),
    "serve": ("Run the web desk for the editors and the reporters' forms, and the daily "
              "scheduler, until Ctrl-C.", "pipeline serve --port 8000"),
    "worker": ("Run the daily scheduler alone (when the web desk runs in other "
               "processes), until Ctrl-C.", "pipeline worker"),
    "units": ("List the reporting units as a tree, with how many reports each sent, how "
              "many are waiting, published and late; add or import units.",
              "pipeline units\n  pipeline units add 洋湖国际社区 --level community "
              "--parent 黄金园街道"),
    "user": ("Create an editor's login for the web desk, or set a new password.",
             "printf 'a-long-password\\n' | pipeline user add 王编辑"),
    "digest": ("Print the daily digest (yesterday's push, what waits, what is late); "
               "--send emails it to the editors and leaders.",
               "pipeline digest --date 2026-06-18 --send"),
    "bulletin": ("Write the weekly joint bulletin (每周联合通报) ranking the units; "
                 "--send emails it.", "pipeline bulletin --week 2026-W26"),
    "proofread": ("Proofread one draft again (typos, banned and caution words, official "
                  "names, private data, punctuation) and list what it found; it never "
                  "changes the text.", "pipeline proofread 12"),
    "stats": ("Show how many people read, shared and liked each published story, and "
              "the account's followers, from WeChat's figures.",
              "pipeline stats --days 7 --unit 麓谷街道"),
    "reach": ("Fetch the latest read figures from WeChat now (the scheduler does this "
              "every morning after 10:00).", "pipeline reach"),
    "media": ("List the outlets in reported coverage (宣传报道) that are not classified "
              "yet, or classify one by level (国家, 省, 市, 区县, 新媒体).",
              "pipeline media unknown"),
    "mail": ("Email tools: 'mail test' sends one message to check the SMTP settings, "
             "'mail outbox' lists the emails waiting or failed.",
             "pipeline mail test wangbj@example.cn"),
}


def apply(parser: argparse.ArgumentParser) -> None:
    """Put the texts above on the program and on every command's parser."""
    parser.description, parser.epilog = textwrap.fill(PROGRAM, 80), PROGRAM_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for choice in action._choices_actions:
            if choice.dest in COMMANDS:
                choice.help = COMMANDS[choice.dest][0].split(". ")[0].rstrip(".")
        for name, sub in action.choices.items():
            if name in COMMANDS:
                text, example = COMMANDS[name]
                sub.description = textwrap.fill(text, 80)
                sub.epilog = f"example:\n  {example}" + (sub.epilog or "")
                sub.formatter_class = argparse.RawDescriptionHelpFormatter


_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a mistyped command and help texts that
    may be built only when asked for (the report fields under ``submit --help``)."""

    def __init__(self, *args: Any, late_epilog: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.late_epilog = late_epilog

    def format_help(self) -> str:
        if self.late_epilog is not None:
            self.epilog = (self.epilog or "") + self.late_epilog()
            self.late_epilog = None
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        found = _CHOICE.search(message)
        if found is not None:
            choices = re.findall(r"'([^']*)'", found[2])
            close = difflib.get_close_matches(found[1], choices, n=2, cutoff=0.6)
            hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
            message = (f"unknown command {found[1]!r}; {hint}"
                       f"'{self.prog} --help' lists every command")
        super().error(message)
