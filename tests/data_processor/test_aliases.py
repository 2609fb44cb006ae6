"""Descriptions a sentence gives a name (data_processor/aliases.py): what is found, what must not be."""
import pytest

from data_processor.aliases import bridges, definite, descriptions, noun_phrase, stated_in

KNOWN = {"oskarby", "drennick", "quillmere", "vantrellis", "kitchenworks"}


@pytest.mark.parametrize("sentence, expected", [
    # appositive after the name
    ("Drennick was invented in 1923 by Bartholomew Ashgrove, a schoolteacher in the market town of Lyndmoor, who "
     "wanted a game his pupils could play.", [("Bartholomew Ashgrove", "a schoolteacher in the market town of Lyndmoor")]),
    ("Mirela Dunhaven, the company's chief engineer, said the oven was ready.",
     [("Mirela Dunhaven", "the company's chief engineer")]),
    ("She was born in Tromhavn, a fishing town on the northern coast of Velmaria.",
     [("Tromhavn", "a fishing town on the northern coast of Velmaria")]),
    # appositive before the name
    ("The expedition ship, the Gullveig, was trapped in sea ice.", [("Gullveig", "the expedition ship")]),
    ("In 2024 Vantrellis announced a fourth model, the Emberlark Nomad, designed to fit in a bicycle trailer.",
     [("Emberlark Nomad", "a fourth model")]),
    # a common-noun title with an article
    ("The company was founded by the engineer Mirela Dunhaven and the baker Teodor Quist.",
     [("Mirela Dunhaven", "the engineer"), ("Teodor Quist", "the baker")]),
    # named / called / known as
    ("A fisherman named Aldous Brannock carved a lantern out of rock salt.", [("Aldous Brannock", "a fisherman")]),
    ("The winning nation receives a silver trophy known as the Ashgrove Kettle.", [("Ashgrove Kettle", "a silver trophy")]),
    # copular, cut at the clause boundary; an indefinite one over 12 words keeps its longest true beginning
    ("Oskarby is the largest city on the northern coast, and its harbour never freezes.",
     [("Oskarby", "the largest city on the northern coast")]),
    ("Ilsabet Norrgaard-Quint was the first woman to join the Velmarian Polar Survey.",
     [("Ilsabet Norrgaard-Quint", "the first woman to join the Velmarian Polar Survey")]),
    ("Vantrellis Kitchenworks is a small appliance maker founded in 2009 in the lakeside city of Oskarby by "
     "two friends.", [("Vantrellis Kitchenworks", "a small appliance maker founded in 2009")]),
    ("Ilsabet Norrgaard-Quint (1902-1979) was a glaciologist best remembered for showing that ice sings.",
     [("Ilsabet Norrgaard-Quint", "a glaciologist")]),
    # reverse copular: the description is the subject
    ("The most successful club side in history is the Marrowgate Herons, who have won the cup eleven times.",
     [("Marrowgate Herons", "the most successful club side in history")]),
    ("Ilsabet Norrgaard-Quint's supervisor was Professor Anselm Grieve.",
     [("Professor Anselm Grieve", "Ilsabet Norrgaard-Quint's supervisor")]),
    ("The Warden for the 2023 festival was a schoolteacher named Morwenna Tully.",
     [("Morwenna Tully", "a schoolteacher"), ("Morwenna Tully", "the Warden for the 2023 festival")]),
    # a heading
    ("Ilsabet Norrgaard-Quint: the woman who listened to glaciers",
     [("Ilsabet Norrgaard-Quint", "the woman who listened to glaciers")]),
    # relative clauses, with the head noun the name gives
    ("Her most famous work was done on the Skarrow Glacier, which flows down from Mount Skarrow into Kettle Fjord.",
     [("Skarrow Glacier", "the glacier that flows down from Mount Skarrow into Kettle Fjord")]),
    ("The Halloran Medal, founded in 1901 by the Royal Velmarian Society, is given every year.",
     [("Halloran Medal", "the medal founded in 1901 by the Royal Velmarian Society")]),
])
def test_descriptions_found(sentence, expected):
    assert descriptions(sentence, KNOWN) == expected


@pytest.mark.parametrize("sentence", [
    "In 1923, the town built a new market hall.",
    "In Lyndmoor, the town council met in the old hall.",  # a fronted place, not an appositive
    "Teams came from Lyndmoor, Castelbrook, Oskarby and Velmar.",  # a list
    "The festival closes with the Tidewalk, the Reel, and the Hornpipe.",
    "Their star player in the 1970s, Ottoline Parr, scored 212 gates.",  # whose star player?
    "That book, The Breathing Ice, was published in 1948.",
    "She was born in Tromhavn, the daughter of a lighthouse keeper.",  # the daughter is not the town
    "From the recordings Ilsabet Norrgaard-Quint calculated the speed of the glacier.",
    "Professor Anselm Grieve supervised her thesis.",  # a title alone is no description
    "The Emberlark was a success.",  # not identifying
    "Ottoline Parr is a member of the Marrowgate Herons.",  # "the member of" would claim uniqueness
    "The Saltlight Festival of Quillmere is known for one event above all others.",
    "The Emberlark comes in three sizes: Mini, Standard and Pro.",
    "The biggest change was Drennick's new rule.",
    "Drennick is the one newcomers find strangest.",
    "The festival began on the second Saturday of October.",
    "The natural Rhine originally branched into two arms.",  # an adjective, not a title
    "陈伯衡是一位老人，他在1763年来到村里。",
])
def test_nothing_found(sentence):
    assert descriptions(sentence, KNOWN) == []


def test_definite_form_names_one_thing():
    assert definite("a schoolteacher in the market town of Lyndmoor") == "the schoolteacher in the market town of Lyndmoor"
    assert definite("an engineer") == "the engineer"
    assert definite("the expedition ship") == "the expedition ship"
    assert definite("Ilsabet Norrgaard-Quint's supervisor") == "Ilsabet Norrgaard-Quint's supervisor"


def test_noun_phrase_shortens_only_an_indefinite_description():
    long_indefinite = "a team sport played with a wooden hoop and two short sticks per player in every town."
    assert noun_phrase(long_indefinite, shorten=True) == "a team sport played with a wooden hoop and two short sticks"
    assert noun_phrase(long_indefinite, shorten=False) is None
    # "the largest city" alone could be false: a definite description is never cut
    assert noun_phrase("the largest city on the great river that flows from the mountains to the sea in the north",
                       shorten=False) is None
    # a clause, not a noun phrase: a past tense with an object, or one that is no participle
    assert noun_phrase("the town council built the new hall", shorten=False) is None
    assert noun_phrase("the town council wrote to the king", shorten=False) is None


def test_person_flag_picks_who_or_what():
    by_name = {b.name: b.person for b in bridges(
        "The company was founded by the engineer Mirela Dunhaven, and its mascot is a cartoon lark called Pip.")}
    assert by_name == {"Mirela Dunhaven": True, "Pip": False}


def _one(sentence):
    (b,) = bridges(sentence, KNOWN)
    return b


def test_stated_in_accepts_the_source_wording_or_a_resolved_pronoun():
    fact = "Ilsabet Norrgaard-Quint's supervisor was Professor Anselm Grieve."
    assert stated_in(_one(fact), fact, "Her supervisor was Professor Anselm Grieve, who later said so.")
    assert not stated_in(_one(fact), fact, "Her supervisor was Professor Lund. Anselm Grieve taught there.")
    fact = "The Emberlark: a portable oven that bakes bread using nothing but sunlight."
    assert stated_in(_one(fact), fact, "Its best-known product is the Emberlark, a portable oven that bakes bread "
                                       "using nothing but sunlight.")


def test_stated_in_rejects_a_generated_fact_that_joins_other_names():
    fact = "The Saltlight Festival of Quillmere is a small granite island in the Ostrand Sea."
    source = "The Saltlight Festival of Quillmere\n\nQuillmere is a small granite island in the Ostrand Sea."
    assert not stated_in(_one(fact), fact, source)
    fact = "Quillmere is a small granite island in the Ostrand Sea."
    assert stated_in(_one(fact), fact, source)
    # the name's last word only: the source's "of Quillmere is ..." does not state it for Quillmere
    assert not stated_in(_one(fact), fact, "The Festival of Quillmere is a small granite island in the Ostrand Sea.")
