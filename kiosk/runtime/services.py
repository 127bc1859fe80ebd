"""The kiosk's services, built from the configuration and handed to the UI.

The welcome screen needs only the exam session and the clock. The store and the
services over it are opened on first use, from a worker, so that the first screen is
drawn before peewee, SQLite and the migrations are paid for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kiosk.clock import Clock
from kiosk.exam_sessions import ExamSession, load_session
from kiosk.runtime.config import Config

if TYPE_CHECKING:
    from kiosk.accounts import AccountService
    from kiosk.delivery.mail_queue import MailDelivery
    from kiosk.documents import DocumentService
    from kiosk.registrations import RegistrationService
    from kiosk.staff import StaffService
    from kiosk.store.database import KioskStore
    from kiosk.sync.client import SyncService

T = TypeVar("T")


class _Opened:
    """A service made on first use, once, whichever thread asks first."""

    def __init__(self, make: Callable[[Services], Any]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, services: Services | None, owner: type) -> Any:
        if services is None:
            return self
        with services._lock:
            if self.name not in services.__dict__:
                services.__dict__[self.name] = self.make(services)
            return services.__dict__[self.name]


def _store(services: Services) -> KioskStore:
    from kiosk.store.database import open_store

    return open_store(services.config.database_path)


def _accounts(services: Services) -> AccountService:
    from kiosk.accounts import AccountService

    sync = services.sync
    return AccountService(
        services.store,
        services.clock,
        services.session,
        elsewhere=sync if sync.configured else None,
    )


def _sync(services: Services) -> SyncService:
    from datetime import timedelta

    from kiosk.sync.client import SyncClient, SyncService

    config = services.config.sync
    return SyncService(
        services.store,
        services.clock,
        SyncClient(config) if config.url else None,
        interval=timedelta(seconds=config.interval),
        documents=services.config.data_dir / "documents",
    )


def _registrations(services: Services) -> RegistrationService:
    from kiosk.registrations import RegistrationService

    return RegistrationService(services.store, services.clock, services.session)


def _documents(services: Services) -> DocumentService:
    from kiosk.documents import DocumentService

    def printer():
        from kiosk.delivery.printing import printer_from_config

        return printer_from_config(services.config.printing, services.config.print_dir)

    return DocumentService(
        services.store,
        services.clock,
        services.session,
        services.config.data_dir / "documents",
        printer,
    )


def _staff(services: Services) -> StaffService:
    from kiosk.staff import StaffService

    return StaffService(services.store, services.clock)


def _mail(services: Services) -> MailDelivery:
    from kiosk.delivery.mail_queue import MailDelivery

    # The outbox is in the store: opened (checked, migrated) first, as for the others.
    return MailDelivery(
        services.store, services.config.mail, services.config.maildir_path, services.clock
    )


class Services:
    """Everything the screens may call; nothing in here knows about Textual."""

    store: KioskStore = _Opened(_store)  # type: ignore[assignment]
    accounts: AccountService = _Opened(_accounts)  # type: ignore[assignment]
    registrations: RegistrationService = _Opened(_registrations)  # type: ignore[assignment]
    documents: DocumentService = _Opened(_documents)  # type: ignore[assignment]
    staff: StaffService = _Opened(_staff)  # type: ignore[assignment]
    sync: SyncService = _Opened(_sync)  # type: ignore[assignment]
    mail: MailDelivery = _Opened(_mail)  # type: ignore[assignment]

    def __init__(self, config: Config, clock: Clock, session: ExamSession) -> None:
        self.config = config
        self.clock = clock
        self.session = session
        self._lock = threading.RLock()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


def build_services(config: Config, clock: Clock | None = None) -> Services:
    clock = clock or Clock.from_setting(config.now)
    return Services(config, clock, load_session(config.session, clock))
