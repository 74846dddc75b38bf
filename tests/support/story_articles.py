"""Realistic articles for story tests: three outlets on one event, worded their own way, and same-topic others.

The event: an explosion at the Norvane chemical plant outside Talvik. Each outlet writes it up in
its own words, hours apart. Beside it: other news from Talvik the same week and other news of the
same company, which must not join the story.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Article:
    """One article as a feed publishes it."""

    #: Outlet key: which fixture feed carries it.
    outlet: str
    #: Slug for its URL.
    slug: str
    #: Headline.
    title: str
    #: Body paragraphs.
    paragraphs: tuple[str, ...]
    #: Hours after the first report.
    hours: float
    #: True for the three reports of the explosion.
    on_story: bool


EXPLOSION = (
    Article(
        "harbour",
        "norvane-blast",
        "Explosion at Norvane chemical plant near Talvik injures 14 workers",
        (
            "An explosion tore through a storage hall at the Norvane chemical plant outside Talvik early on "
            "Tuesday, injuring 14 workers, four of them seriously, the regional fire service said.",
            "Firefighters from Talvik and two neighbouring towns fought the blaze for more than three hours. "
            "Residents within two kilometres of the plant were told to keep windows closed while crews "
            "measured the air for chlorine and other chemicals.",
            "Norvane said the blast happened in a hall used to store solvents and that production had been "
            "halted on the whole site. The company said it was working with investigators.",
            "The plant employs about 600 people and is one of the largest employers in the Talvik region.",
        ),
        0.0,
        True,
    ),
    Article(
        "ledger",
        "talvik-plant-fire",
        "Norvane halts Talvik production after blast in solvent store",
        (
            "Norvane stopped production across its Talvik chemical plant on Tuesday after a blast in a solvent "
            "storage hall left 14 employees hurt, raising fresh questions about safety at the site.",
            "Chief executive Mira Olsen told reporters the company would pay for an independent review and "
            "that no chemicals had leaked beyond the plant fence, according to early air measurements.",
            "Shares in Norvane fell 6 per cent in Oslo trading. Analysts said a long halt at Talvik, which "
            "makes a fifth of the group's solvents, would weigh on second-quarter earnings.",
            "Labour inspectors had fined the plant twice in the past three years over storage rules.",
        ),
        5.0,
        True,
    ),
    Article(
        "courier",
        "talvik-residents-blast",
        "Talvik residents describe night of fear after Norvane chemical blast",
        (
            "People living near the Norvane plant in Talvik said the explosion shook windows a kilometre "
            "away, and many spent the night with relatives after being told to keep windows shut.",
            "Fourteen workers were injured in the blast in the plant's solvent storage hall; the hospital "
            "in Talvik said four remained in serious condition on Wednesday.",
            "Investigators from the national safety board arrived at the site, and the regional fire service "
            "said chlorine readings around the plant were back to normal.",
            "Local councillors called for an inquiry into why solvents were stored so close to homes.",
        ),
        26.0,
        True,
    ),
)

OTHERS = (
    Article(
        "harbour",
        "talvik-budget",
        "Talvik council approves budget with new ferry terminal",
        (
            "Talvik city council approved next year's budget on Monday evening after a long debate, setting "
            "aside money for a new ferry terminal and the renovation of two primary schools.",
            "The opposition voted against, saying property taxes rise too fast. The mayor said the ferry "
            "terminal would bring tourists and jobs to the harbour district.",
        ),
        -20.0,
        False,
    ),
    Article(
        "ledger",
        "norvane-earnings",
        "Norvane quarterly profit beats forecasts on fertiliser demand",
        (
            "Norvane reported first-quarter operating profit above analysts' forecasts, helped by strong "
            "demand for fertiliser in Brazil and lower gas prices in Europe.",
            "The group raised its dividend and said it would open a new fertiliser line in Rotterdam next year.",
        ),
        -30.0,
        False,
    ),
    Article(
        "courier",
        "glacier-hike",
        "Record numbers of hikers on the Skarvik glacier trail this summer",
        (
            "The Skarvik glacier trail drew a record number of hikers this summer, the park service said, "
            "and guides asked visitors to stay on marked paths as the ice retreats.",
        ),
        3.0,
        False,
    ),
)

#: Outlet key -> (feed title, site link).
OUTLETS = {
    "harbour": ("Harbour Gazette", "https://harbour-gazette.example/"),
    "ledger": ("Nordic Ledger", "https://nordic-ledger.example/"),
    "courier": ("Talvik Courier", "https://talvik-courier.example/"),
}
