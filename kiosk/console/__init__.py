"""The staff console's work, on a kiosk's store or on the rectorat's.

A :class:`~kiosk.console.base.ConsoleService` is all the console may call: it checks the staff
member's role before every task (:mod:`kiosk.console.rights`) and records every view or
change of a candidate's data in the audit trail. :func:`open_desk` picks the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.console.base import ConsoleService
    from kiosk.runtime.services import Services


def open_console(services: Services, store: str | None = None) -> ConsoleService:
    """The kiosk's own store (``store`` unset), or the rectorat's store at the URL ``store``
    (``open_store`` refuses a URL it cannot use)."""
    if store:
        from kiosk.console.on_rectorat import RectoratConsole
        from kiosk.rectorat.mail import mail_from_config
        from kiosk.rectorat.store import open_store

        # What the exam office publishes is told to its candidate by the rectorat's mail.
        mail = mail_from_config(services.config, services.clock)
        return RectoratConsole(
            open_store(store),
            services.clock,
            services.session,
            services.config.exports_dir,
            mail=mail,
        )
    from kiosk.console.on_kiosk import KioskConsole

    return KioskConsole(services)
