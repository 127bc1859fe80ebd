"""The kiosk's services, built once from the configuration and handed to the UI."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import Database

from kiosk.accounts import AccountService
from kiosk.clock import Clock
from kiosk.config import Config
from kiosk.exam_sessions import ExamSession, load_session
from kiosk.outbox import MailDelivery
from kiosk.store import open_store


@dataclass
class Services:
    """Everything the screens may call; nothing in here knows about Textual."""

    config: Config
    clock: Clock
    session: ExamSession
    db: Database
    accounts: AccountService
    mail: MailDelivery

    def close(self) -> None:
        self.db.close()


def build_services(config: Config, clock: Clock | None = None) -> Services:
    clock = clock or Clock.from_setting(config.now)
    session = load_session(config.session, clock)
    db = open_store(config.database_path)
    return Services(
        config=config,
        clock=clock,
        session=session,
        db=db,
        accounts=AccountService(db, clock, session),
        mail=MailDelivery(config.mail, config.maildir_path, clock),
    )
