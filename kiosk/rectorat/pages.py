"""The pages the rectorat serves to candidates: the activation link of their mail.

Plain French HTML, one page each, with no script, no style sheet and no image from
anywhere: a mail client's browser shows it as it is, and nothing else is fetched. The
link's own page only asks for a press of its button (a form that posts): mail scanners
that open every link would otherwise spend it before its owner does.
"""

from __future__ import annotations

from html import escape

_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def _page(title: str, *paragraphs: str, form: str = "") -> str:
    body = "\n".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs) + form
    return _PAGE.format(title=escape(title, quote=False), body=body)


def confirm_page(action: str) -> str:
    """The link's page: one button that activates the account."""
    form = (
        f'\n<form method="post" action="{escape(action, quote=True)}">'
        '\n<p><button type="submit">Activer mon compte</button></p>\n</form>'
    )
    return _page(
        "Activer mon compte candidat",
        "Pour activer votre compte candidat au baccalauréat professionnel, appuyez sur le "
        "bouton ci-dessous.",
        form=form,
    )


def activated_page() -> str:
    return _page(
        "Votre compte est activé",
        "Votre compte candidat est activé. Vous pouvez maintenant vous connecter sur une "
        "borne, écran « Me connecter », pour vous inscrire.",
        "Vous pouvez fermer cette page.",
    )


def not_activated_page() -> str:
    """The same page whatever the reason: a link used already, replaced by a later code,
    past its 48 hours, or never sent."""
    return _page(
        "Ce lien n'est plus valable",
        "Ce lien d'activation n'est plus valable : il a déjà servi, un code plus récent "
        "vous a été envoyé, ou le délai de 48 heures est passé.",
        "Si votre compte est déjà activé, connectez-vous sur une borne, écran « Me "
        "connecter ». Sinon, demandez un nouveau code sur une borne, écran « Activer mon "
        "compte », ou créez votre compte à nouveau s'il a été supprimé.",
    )
