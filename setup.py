"""The package build compiles the message catalogues (.po -> .mo) with Babel; all
other metadata is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for source in Path("pipeline/locale").glob("*/LC_MESSAGES/*.po"):
            with source.open("rb") as handle:
                catalog = read_po(handle, locale=source.parts[-3])
            with source.with_suffix(".mo").open("wb") as out:
                write_mo(out, catalog)
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
