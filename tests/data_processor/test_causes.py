"""Why- and how-questions made by rule from a fact's cause, purpose or means clause (data_processor/causes.py)."""
import pytest

from data_processor.causes import Clause, cause_questions, inverted, split_clause, what_caused


def asked(sentence, per_clause=2, known=None):
    return [q for q, _ in cause_questions(sentence, per_clause, known)]


@pytest.mark.parametrize("sentence, questions, clause", [
    # purpose: "to <verb>" after a complete passive clause
    ("The Rhine was regulated to counteract the constant flooding.",
     ["Why was the Rhine regulated?", "For what purpose was the Rhine regulated?"],
     "to counteract the constant flooding"),
    # means: "by <verb>ing"
    ("The theory formalizes this intuition, by introducing mathematical models of computation.",
     ["How does the theory formalize this intuition?", "By what means does the theory formalize this intuition?"],
     "by introducing mathematical models of computation"),
    # reason: "because of" after a modal
    ("The lake will silt up because of the continuous input of sediment.",
     ["Why will the lake silt up?", "What will cause the lake to silt up?"],
     "because of the continuous input of sediment"),
    # reason: "due to", present passive with an adverb
    ("The river is significantly shortened due to canalisation projects.",
     ["Why is the river significantly shortened?", "What causes the river to be significantly shortened?"],
     "due to canalisation projects"),
    # reason: "because" + a clause, past tense, a fronted date moved to the end; the next clause is not asked
    ("In August 2022 the company recalled 600 ovens because a faulty hinge could let a petal snap shut, and it "
     "replaced the hinge free of charge.",
     ["Why did the company recall 600 ovens in August 2022?",
      "What caused the company to recall 600 ovens in August 2022?"],
     "because a faulty hinge could let a petal snap shut"),
    # reason fronted before the clause it explains
    ("Because the salt slowly dissolves in the sea, a lantern glows for about forty minutes.",
     ["Why does a lantern glow for about forty minutes?", "What causes a lantern to glow for about forty minutes?"],
     "because the salt slowly dissolves in the sea"),
    # reason: "as a result of", perfect passive
    ("The Rhine has been shortened as a result of canalisation projects.",
     ["Why has the Rhine been shortened?", "What has caused the Rhine to be shortened?"],
     "as a result of canalisation projects"),
    # reason: "since" + a clause
    ("The festival was moved to October since the summer storms made the crossing dangerous.",
     ["Why was the festival moved to October?", "What caused the festival to be moved to October?"],
     "since the summer storms made the crossing dangerous"),
    # purpose: "in order to" after an aside without a verb
    ("A regulation of the Rhine was called for, with an upper canal near Diepoldsau, in order to counteract the "
     "flooding.",
     ["Why was a regulation of the Rhine called for?", "For what purpose was a regulation of the Rhine called for?"],
     "in order to counteract the flooding"),
    # purpose: "so that" + a clause
    ("The village built a sea wall so that the harbour would stay open in winter.",
     ["Why did the village build a sea wall?", "For what purpose did the village build a sea wall?"],
     "so that the harbour would stay open in winter"),
    # result: ", so" + a clause: the first clause is the reason of the second
    ("During festival week the island issues only 900 visitor permits, so most tickets are sold out by June.",
     ["Why are most tickets sold out by June?", "What causes most tickets to be sold out by June?"],
     "During festival week the island issues only 900 visitor permits"),
    # "X was caused by Y"
    ("The flooding was caused by heavy rain.", ["What caused the flooding?", "What was the cause of the flooding?"],
     "heavy rain"),
    # "X led to Y": asks for X, one wording
    ("The Great Gale of 1846 led to the founding of the festival.", ["What led to the founding of the festival?"],
     "The Great Gale of 1846"),
    # a purpose in the second clause of a sentence, whose subject is a name
    ("The ship was trapped in sea ice, and Norrgaard-Quint used the time to write the first draft of her book.",
     ["Why did Norrgaard-Quint use the time?", "For what purpose did Norrgaard-Quint use the time?"],
     "to write the first draft of her book"),
])
def test_cause_questions_ask_about_the_clause_without_it(sentence, questions, clause):
    assert cause_questions(sentence, 2) == [(q, clause) for q in questions]
    assert cause_questions(sentence, 1) == [(questions[0], clause)]


@pytest.mark.parametrize("sentence", [
    "The river began to flow north.",  # an infinitive complement, not a purpose
    "Every child wants to play drennick.",
    "Ilsabet Norrgaard-Quint was able to record the ice.",
    "Ilsabet Norrgaard-Quint was the first woman to join the survey.",
    "The company asked the baker to design a new oven.",  # object control
    "Ilsabet Norrgaard-Quint went to school in Tromhavn.",  # "to" + a noun
    "The IDF moved its headquarters to Castelbrook in 1958.",
    "The Emberlark Nomad is due to go on sale in 2026.",  # scheduled, not caused
    "The club has played in Lyndmoor since 1923.",  # "since" + a year
    "The club has grown since the league was founded.",  # "since" after a perfect: time
    'The film "Because of the Wind" was released in 1990 because the studio wanted it.',  # a quoted title
    "The book Because We Sailed was written by Anselm Grieve.",  # a capitalised title
    "The Emberlark: a portable oven that bakes bread by focusing sunlight.",  # no main verb
    "Natural rubber is a milky sap collected by cutting grooves in the bark.",  # the participle's clause
    "She was regulated to counteract the flooding.",  # a pronoun says nothing closed-book
    "The natural Rhine branched into two arms and formed small islands by precipitating sediments.",  # other clause
    "The Rhine is due to the influence of Greek orthography.",  # nothing left to ask why of
    "In 1951 Ilsabet Norrgaard-Quint received the Halloran Medal, becoming the first glaciologist to win it.",
    "Lyndmoor 在 1923 年因为洪水而被重建。",  # Chinese: the rules are English
])
def test_cause_questions_give_nothing_where_the_clause_cannot_be_asked_about(sentence):
    assert cause_questions(sentence, 3) == []


def test_cause_questions_per_clause_counts_each_clause_and_zero_gives_none():
    sentence = ("The Rhine was regulated to counteract the flooding, and the lake will silt up because of the "
                "input of sediment.")
    assert asked(sentence, 1) == ["Why was the Rhine regulated?", "Why will the lake silt up?"]
    assert len(asked(sentence, 2)) == 4 and asked(sentence, 5) == asked(sentence, 2)
    assert cause_questions(sentence, 0) == []


def test_known_names_tell_a_name_from_a_capitalised_first_word():
    sentence = "Wool is popular because its fibres trap air."
    assert asked(sentence, 1) == ["Why is Wool popular?"]  # without the source's names it stays as written
    assert asked(sentence, 1, known={"drennick"}) == ["Why is wool popular?"]
    assert asked("Drennick is popular because it is cheap.", 1, known={"drennick"}) == ["Why is Drennick popular?"]


def test_split_clause_and_the_wordings():
    c = split_clause("In 2019 the islanders set a record")
    assert c == Clause("the islanders", "set", "a record", "in 2019")
    assert inverted(c, "How") == "How did the islanders set a record in 2019?"
    assert what_caused(c) == "What caused the islanders to set a record in 2019?"
    # "sinks" is also a noun: the verb where the clause ends after it or a word after it makes it one
    assert asked("The lantern sinks because the salt dissolves.", 1) == ["Why does the lantern sink?"]
    assert asked("The ferry sails twice a week in order to keep the island supplied.", 1) == [
        "Why does the ferry sail twice a week?"]
    assert split_clause("The islanders float boats") is None
    assert what_caused(Clause("the islanders", "did", "not sail")) is None  # a negation reads wrongly
    assert what_caused(Clause("the lake", "can", "silt up")) is None
    assert what_caused(Clause("a source of food quickly", "attracts", "foragers")) == \
        "What causes a source of food to quickly attract foragers?"
