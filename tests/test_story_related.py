"""Related stories on the story page: other stories close to this one, linked below the timeline.

A real poll of fixture feeds on 127.0.0.1: the Norvane explosion (three outlets), a follow-up story two
days later once the first has gone quiet (two outlets), and same-topic news that is not either story.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from flask import Flask

from web.app import create_app, services_of
from web.services import Services

from .support.httpserver import FeedServer, Reply
from .support.polled import polled_services
from .support.story_articles import EXPLOSION, OTHERS, OUTLETS, Article

#: The follow-up story: published after the explosion's story has ended (the default quiet period is 72 h).
FOLLOW_UP = (
    Article(
        "harbour",
        "norvane-shut-month",
        "Norvane to keep Talvik plant shut for a month after solvent hall explosion",
        (
            "Norvane will keep its Talvik chemical plant closed for at least a month while investigators "
            "examine the solvent storage hall where last week's explosion injured 14 workers.",
            "The company said staff would be paid during the shutdown and that the blast site remained sealed. "
            "Talvik's mayor welcomed the decision and asked for a public report on the explosion.",
        ),
        100.0,
        False,
    ),
    Article(
        "ledger",
        "norvane-ventilation",
        "Safety board points to ventilation fault in Norvane Talvik blast",
        (
            "Investigators from the national safety board said a ventilation fault let solvent vapour build up "
            "in the storage hall of Norvane's Talvik plant before the explosion that injured 14 workers.",
            "Norvane said it would keep the Talvik plant shut until the board's findings were addressed, "
            "and its shares slipped again in Oslo.",
        ),
        103.0,
        False,
    ),
)


def rss(outlet: str, articles: list[Article], first: datetime) -> bytes:
    title, site = OUTLETS[outlet]
    items = "".join(
        f"<item><title>{escape(a.title)}</title><link>{site}{a.slug}</link><guid>{site}{a.slug}</guid>"
        f"<pubDate>{format_datetime(first + timedelta(hours=a.hours))}</pubDate>"
        f"<description>{escape(''.join(f'<p>{p}</p>' for p in a.paragraphs))}</description></item>"
        for a in articles
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{site}</link><description>{escape(title)}</description>{items}</channel></rss>"
    ).encode()


@pytest.fixture
def world(tmp_path: Path, feed_server: FeedServer) -> Iterator[tuple[Services, Flask]]:
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=110)
    urls = []
    for outlet in OUTLETS:
        articles = [a for a in EXPLOSION + FOLLOW_UP + OTHERS if a.outlet == outlet]
        body = rss(outlet, articles, first)
        feed_server.route(f"/{outlet}.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
        urls.append(feed_server.url(f"/{outlet}.xml"))
    services = polled_services(tmp_path / "data", urls)
    app = create_app(services.config)
    yield services, app
    services_of(app).close()
    services.close()


def story_of(services: Services, articles: tuple[Article, ...]) -> str:
    titles = {a.title for a in articles}
    ids = [e.id for e in services.store.iter_entries() if e.title in titles]
    assert len(ids) == len(articles)
    (story_id,) = set(services.stories.stories_of(ids).values())
    return story_id


def test_a_story_page_links_its_related_stories(world: tuple[Services, Flask]) -> None:
    services, app = world
    explosion, follow_up = story_of(services, EXPLOSION), story_of(services, FOLLOW_UP)
    assert explosion != follow_up
    client = app.test_client()
    page = client.get(f"/stories/{explosion}").get_data(as_text=True)
    related = page.split("Related stories", 1)[1]
    assert f'href="/stories/{follow_up}"' in related and escape(FOLLOW_UP[0].title) in related
    assert f"/stories/{explosion}" not in related
    # Same-town and same-company news of the week is not a related story.
    assert not any(escape(a.title) in related for a in OTHERS)
    back = client.get(f"/stories/{follow_up}").get_data(as_text=True).split("Related stories", 1)[1]
    assert f'href="/stories/{explosion}"' in back and escape(EXPLOSION[0].title) in back


def test_a_related_story_of_too_few_outlets_links_its_article(world: tuple[Services, Flask]) -> None:
    services, _ = world
    config = services.config
    strict = dataclasses.replace(config, stories=dataclasses.replace(config.stories, min_outlets=3))
    app = create_app(strict)
    try:
        explosion, follow_up = story_of(services, EXPLOSION), story_of(services, FOLLOW_UP)
        page = app.test_client().get(f"/stories/{explosion}").get_data(as_text=True)
        related = page.split("Related stories", 1)[1]
        lead = next(e for e in services.store.iter_entries() if e.title == FOLLOW_UP[0].title)
        assert f'href="/entries/{lead.id}"' in related and f"/stories/{follow_up}" not in related
    finally:
        services_of(app).close()


def test_a_lone_headline_sharing_one_word_is_not_a_related_story(world: tuple[Services, Flask]) -> None:
    # A one-word headline's centroid is that word: its cosine with the explosion's centroid is high
    # on one shared term (the company's name), which is no more a related story than it is the same story.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    feed = services.store.add_feed("https://elsewhere.example/feed", title="Elsewhere Daily")
    lone = dataclasses.replace(
        next(e for e in services.store.iter_entries() if e.title == EXPLOSION[-1].title),
        id="lone-headline",
        identity="lone-headline",
        url="https://elsewhere.example/lone",
        title="Norvane",
        summary="",
        text="",
        content_html="",
        fingerprint=1,
    )
    services.store.save_entries(feed.id, [lone])
    services.assign_stories()
    services.stories.refresh()
    state, other = (
        services.stories.story(explosion),
        services.stories.story(services.stories.stories_of(["lone-headline"])["lone-headline"]),
    )
    assert state is not None and other is not None and other.id != explosion
    from web.stories import RELATED_STORY_SIMILARITY, centroid_cosine

    assert centroid_cosine(state, other) >= RELATED_STORY_SIMILARITY  # the cosine alone would link it
    page = app.test_client().get(f"/stories/{explosion}").get_data(as_text=True)
    assert "lone-headline" not in page.split("Related stories", 1)[1]


def test_a_headline_alone_shows_its_story_only_where_the_finder_vouches_for_it(world: tuple[Services, Flask]) -> None:
    # A headline is a few words: it shares two names with the explosion's story and the story lookup
    # places it there, but another story of the same company twelve hours later is not the explosion.
    from aggregator.stories import StoryArticle

    services, app = world
    explosion = story_of(services, EXPLOSION)
    entries = {e.title: e for e in services.store.iter_entries()}
    members = {entries[a.title].id for a in EXPLOSION}
    first = entries[EXPLOSION[0].title].published_at
    award = "Norvane chemical plant in Talvik wins national export award"
    services.stories.refresh()

    def placed(hours: float) -> str | None:
        asked = StoryArticle(id="query:award", title=award, published_at=first + timedelta(hours=hours), text="")
        match = services.stories.find(services.story_assigner, asked)
        return match.story.id if match is not None else None

    # Two days on, a headline's words no longer place it in the story (time must vouch for a headline)...
    assert placed(50) != explosion
    # ... twelve hours on they still do: the story lookup alone would show its members.
    later = first + timedelta(hours=12)
    assert placed(12) == explosion
    client = app.test_client()
    asked = {"title": award, "date": later.isoformat(), "url": "https://elsewhere.example/award"}
    items = client.get("/api/v1/related", query_string=asked).get_json()["items"]
    assert not {i["id"] for i in items} & members
    # The same kind of question close in wording and in time to the coverage: the finder vouches.
    close = {
        "title": "Blast at Norvane chemical plant near Talvik injures workers",
        "date": (first + timedelta(hours=1)).isoformat(),
        "url": "https://elsewhere.example/blast",
    }
    items = client.get("/api/v1/related", query_string=close).get_json()["items"]
    assert items and {i["id"] for i in items} <= members and items[0]["story_id"] == explosion


def add_fjord_post_article(
    services: Services, entry_id: str, title: str, text: str, hours: float, outlet: str = "Fjord Post"
) -> None:
    """Store one article of another outlet (Fjord Post unless named), ``hours`` after the first report, and assign it."""
    first = next(e for e in services.store.iter_entries() if e.title == EXPLOSION[0].title)
    host = outlet.lower().replace(" ", "-") + ".example"
    feed = services.store.add_feed(f"https://{host}/feed", title=outlet)
    article = dataclasses.replace(
        first,
        id=entry_id,
        identity=entry_id,
        url=f"https://{host}/{entry_id}",
        title=title,
        summary="",
        text=text,
        content_html="",
        published_at=first.published_at + timedelta(hours=hours),
        fingerprint=len(entry_id),
    )
    services.store.save_entries(feed.id, [article])
    services.indexer().catch_up()
    services.assign_stories()
    services.stories.refresh()


def test_a_sequel_in_the_story_is_not_listed_as_the_first_reports_coverage(world: tuple[Services, Flask]) -> None:
    # Two days after the blast another outlet reports the next turn of events: the names it shares
    # with the story's centroid join it to the story (its page shows it), but it is not coverage of
    # the blast itself, so the first report's related coverage lists the two other outlets only.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    entries = {e.title: e for e in services.store.iter_entries()}
    first = entries[EXPLOSION[0].title]
    sequel_title = "Norvane replaces Talvik plant director as solvent hall explosion inquiry widens"
    sequel_text = (
        "Norvane replaced the director of its Talvik chemical plant on Thursday, two days after the "
        "explosion in a solvent storage hall, as labour inspectors widened their inquiry to the "
        "company's two other sites. The new director, Henrik Aas, ran Norvane's Bergen coatings "
        "factory. Unions said workers at Talvik would not return until the inspectors had reported, "
        "and Norvane shares fell a further 3 per cent in Oslo."
    )
    add_fjord_post_article(services, "norvane-sequel", sequel_title, sequel_text, hours=50)
    assert services.stories.stories_of(["norvane-sequel"])["norvane-sequel"] == explosion  # it joined the story
    client = app.test_client()
    page = client.get(f"/stories/{explosion}").get_data(as_text=True)
    assert escape(sequel_title) in page
    items = client.get(f"/api/v1/related?entry={first.id}").get_json()["items"]
    others = {entries[a.title].id for a in EXPLOSION[1:]}
    assert {i["id"] for i in items[:2]} == others
    assert "norvane-sequel" not in {i["id"] for i in items}
    # By title+text, as an embedding page of the first report asks, the same.
    asked = {"title": first.title, "text": first.text, "date": first.published_at.isoformat()}
    described = client.get("/api/v1/related", query_string=asked).get_json()["items"]
    assert others <= {i["id"] for i in described} and "norvane-sequel" not in {i["id"] for i in described}


def test_an_outlet_that_founded_a_story_of_its_own_gets_the_story_it_is_nearest_to(
    world: tuple[Services, Flask],
) -> None:
    # A fourth outlet words the blast its own way, a few hours after the others: too few of its words
    # are the story's to join it, so it founds a story of one. Its related coverage is not left empty:
    # the second chance finds the blast's story (a clear lead, more shared terms) and lists the
    # members close to the article itself; the same-town news of the week stays out.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    entries = {e.title: e for e in services.store.iter_entries()}
    text = (
        "A fire ripped through a factory on the edge of Talvik before dawn. More than a dozen people "
        "were taken to hospital, several with burns. Neighbours described a loud bang and a plume of "
        "black smoke over the industrial estate, and police cordoned off the roads around it. The "
        "owner, Norvane, did not answer calls."
    )
    add_fjord_post_article(services, "fjord-fire", "Dawn fire at Talvik factory sends dozen to hospital", text, hours=9)
    own = services.stories.stories_of(["fjord-fire"])["fjord-fire"]
    assert own != explosion  # it founded its own story
    items = app.test_client().get("/api/v1/related?entry=fjord-fire").get_json()["items"]
    blast = {entries[a.title].id for a in EXPLOSION}
    assert items and {i["id"] for i in items} <= blast
    assert {i["story_id"] for i in items} == {explosion}


def test_a_sequel_covered_by_two_outlets_within_hours_is_not_listed_as_the_first_reports_coverage(
    world: tuple[Services, Flask],
) -> None:
    # Hours after the blast two more outlets report the next turn of events, the chief executive's
    # resignation, in words of their own: the names they share with the story join them to it, and
    # they are reported well within the hours in which a member is listed however it is worded. But
    # each is much closer to the other than to the first report: they are coverage of the
    # resignation, and the first report's related coverage lists the blast's other outlets only
    # (asked by entry: for an article we do not store the rule cost more coverage than it saved).
    services, app = world
    explosion = story_of(services, EXPLOSION)
    entries = {e.title: e for e in services.store.iter_entries()}
    first = entries[EXPLOSION[0].title]
    resignations = {
        "olsen-resigns-fjord": (
            "Norvane chief executive Mira Olsen resigns after Talvik explosion",
            "Mira Olsen resigned as chief executive of Norvane on Tuesday evening, hours after the explosion "
            "at the Talvik chemical plant. The board accepted her resignation at an emergency meeting and "
            "named finance director Lars Berg interim chief executive while it searches for a successor. "
            "Olsen said in a statement that she took responsibility for safety at Talvik and that stepping "
            "down was the right thing for Norvane, its employees and the town. Board chair Anne Dahl "
            "thanked Olsen for eleven years with the company and said the search for a permanent chief "
            "executive would begin at once.",
        ),
        "olsen-resigns-bergen": (
            "Norvane board names Lars Berg interim chief as Mira Olsen quits over Talvik blast",
            "The board of Norvane named finance director Lars Berg interim chief executive on Tuesday after "
            "Mira Olsen resigned over the explosion at the company's Talvik plant. Board chair Anne Dahl "
            "said the resignation was accepted at an emergency meeting and that a search for a successor "
            "would begin at once. Olsen, chief executive for eleven years, said she took responsibility "
            "for safety at Talvik. Berg, who joined Norvane from a shipping group, told staff the "
            "company's priority was the injured workers and their families.",
        ),
    }
    add_fjord_post_article(services, "olsen-resigns-fjord", *resignations["olsen-resigns-fjord"], hours=8)
    add_fjord_post_article(
        services, "olsen-resigns-bergen", *resignations["olsen-resigns-bergen"], hours=10, outlet="Bergen Herald"
    )
    stories = services.stories.stories_of(list(resignations))
    assert set(stories.values()) == {explosion}  # both joined the blast's story
    client = app.test_client()
    others = {entries[a.title].id for a in EXPLOSION[1:]}
    items = client.get(f"/api/v1/related?entry={first.id}").get_json()["items"]
    assert {i["id"] for i in items} == others
    # Each resignation report lists the other: they are one event's coverage.
    items = client.get("/api/v1/related?entry=olsen-resigns-fjord").get_json()["items"]
    assert "olsen-resigns-bergen" in {i["id"] for i in items}


def test_wire_copies_in_the_story_do_not_hide_each_other(world: tuple[Services, Flask]) -> None:
    # An agency's report of the blast runs word for word under two mastheads. Each copy's closest fellow
    # is the other copy, far closer than any report worded on its own: copies of one text are not
    # fellows, so the agency's report is still listed (once) as the first report's coverage.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    entries = {e.title: e for e in services.store.iter_entries()}
    first = entries[EXPLOSION[0].title]
    wire = (
        "Fourteen workers were hurt when a solvent storage hall exploded at Norvane's chemical plant in "
        "Talvik, the regional fire service said. Four were in a serious condition. Norvane halted "
        "production at the site and said it was working with investigators from the national safety "
        "board. Residents near the plant were asked to keep their windows closed while the air was tested "
        "for chlorine. The plant is one of the largest employers in the region."
    )
    title = "Blast at Norvane plant in Talvik hurts 14, production halted"
    add_fjord_post_article(services, "wire-copy-a", title, wire, hours=3)
    add_fjord_post_article(services, "wire-copy-b", title, wire, hours=3.5, outlet="Bergen Herald")
    assert set(services.stories.stories_of(["wire-copy-a", "wire-copy-b"]).values()) == {explosion}
    items = {i["id"] for i in app.test_client().get(f"/api/v1/related?entry={first.id}").get_json()["items"]}
    assert len(items & {"wire-copy-a", "wire-copy-b"}) == 1  # listed, and once


def test_two_lone_reports_of_one_event_that_are_each_others_nearest_story_list_each_other(
    world: tuple[Services, Flask],
) -> None:
    # Two outlets report one tram strike a day apart, each in words of its own: too few shared words to
    # join one story, and too far apart in time and in wording for either to count as close to the
    # other. But each is the other's nearest story under the second chance, both ways (mutual nearest
    # neighbours), so each lists the other rather than nothing; the blast's story stays out.
    services, app = world
    add_fjord_post_article(
        services,
        "tram-strike-fjord",
        "Oslo tram drivers walk out over new rosters",
        "Tram drivers in Oslo stopped work at dawn on Monday in a dispute over new shift rosters, leaving "
        "most lines in the capital without service. The drivers' union said the rosters meant split shifts "
        "and fewer rest days, and that the strike would go on until Ruter, the city's transport company, "
        "withdrew them. Ruter put on extra buses on two routes and asked commuters to walk or cycle where "
        "they could; the union turned down its offer of mediation.",
        hours=40,
    )
    add_fjord_post_article(
        services,
        "tram-strike-bergen",
        "Commuters stranded as capital's transit union keeps up stoppage",
        "Thousands of commuters in the capital faced long waits on Tuesday as the transit union's strike "
        "entered a second day. Union leader Per Moe said members would not accept split shifts imposed "
        "without talks, while Ruter said it had offered mediation. Oslo's mayor urged both sides to meet, "
        "and schools told pupils they would not be marked late. Taxi firms reported record demand and "
        "bicycle rental stations in the city centre were empty by eight o'clock.",
        hours=62,
        outlet="Bergen Herald",
    )
    stories = services.stories.stories_of(["tram-strike-fjord", "tram-strike-bergen"])
    assert stories["tram-strike-fjord"] != stories["tram-strike-bergen"]  # neither joined the other
    client = app.test_client()
    fjord = client.get("/api/v1/related?entry=tram-strike-fjord").get_json()["items"]
    bergen = client.get("/api/v1/related?entry=tram-strike-bergen").get_json()["items"]
    assert [i["id"] for i in fjord] == ["tram-strike-bergen"]
    assert [i["id"] for i in bergen] == ["tram-strike-fjord"]
