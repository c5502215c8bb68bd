"""#19: which channel is the agent's, decided from the call (stereo): swapped recordings get the verdicts
of the originals; a doubtful decision goes to review; the config can force the roles."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import SAMPLES

STEREO = ["bad_greeting", "banned_phrase", "compliant", "hold_ring", "no_closing"]


def _copies(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Each stereo sample as 16-bit WAV, as recorded and with its channels exchanged."""
    import soundfile as sf

    same, swapped = [], []
    for name in STEREO:
        source = next(SAMPLES.glob(f"{name}.*"))
        data, rate = sf.read(source, always_2d=True)
        for folder, frames, out in (("same", data, same), ("swapped", data[:, ::-1], swapped)):
            (tmp_path / folder).mkdir(exist_ok=True)
            path = tmp_path / folder / f"{name}.wav"
            sf.write(path, frames, rate, subtype="PCM_16")
            out.append(path)
    return same, swapped


def _summary(result) -> tuple:
    d = result.to_dict()
    return (d["score"], d["verdict"], sorted(f["rule"] for f in d["findings"] if f["status"] == "fail"))


@pytest.mark.asr
def test_swapped_channels_get_the_verdicts_of_the_original(scorer, tmp_path):
    same, swapped = _copies(tmp_path)
    for original, exchanged in zip(same, swapped):
        a, b = scorer.score_path(original), scorer.score_path(exchanged)
        assert _summary(a) == _summary(b), original.name
        assert a.audio["roles"]["how"] == "confirmed" and (a.audio["roles"]["agent"], a.audio["roles"]["customer"]) \
            == (0, 1)
        roles = b.audio["roles"]
        assert (roles["how"], roles["agent"], roles["customer"], roles["confidence"]) == ("swapped", 1, 0, "high")
        assert roles["scores"]["1"] >= 2 + roles["scores"]["0"] and roles["evidence"]["1"]
        # the transcript's parties follow the decision: the agent's greeting is on the agent's lines
        agent_text = "".join(u.text for u in b.transcript if u.channel == "agent")
        assert agent_text and agent_text == "".join(u.text for u in a.transcript if u.channel == "agent")


@pytest.mark.asr
def test_the_config_can_force_the_roles(scorer, tmp_path):
    from qa_audio.pipeline import Scorer

    _, swapped = _copies(tmp_path)
    config = scorer.config
    forced = Scorer(dataclasses.replace(config, channels=dataclasses.replace(config.channels, detect=False)))
    result = forced.score_path(swapped[STEREO.index("compliant")])
    assert result.audio["roles"]["how"] == "configured"
    assert result.to_dict()["verdict"] != "pass"       # the customer cannot give the agent's greeting


def test_a_doubtful_decision_makes_the_verdict_review(sample_store, scorer):
    from qa_audio.results.store import open_store

    with open_store(sample_store) as store:
        call = store.find_call("compliant")
        analysis = call.analysis
    assert analysis is not None and analysis.audio["roles"]["how"] == "confirmed"
    doubtful = dataclasses.replace(analysis, audio=dict(analysis.audio, roles=dict(analysis.audio["roles"],
                                                                                    how="doubtful")))
    result = scorer.judge(doubtful)
    assert result.verdict == "review" and "doubtful" in result.score.reason
    assert scorer.judge(analysis).verdict == "pass"


def test_roles_are_decided_on_agent_evidence(config):
    from qa_audio.judge.analysis import Acoustics
    from qa_audio.judge.matching import PhraseMatcher
    from qa_audio.judge.roles import decide_roles, swap_roles
    from qa_audio.speech.normalize import TextNormalizer
    from qa_audio.speech.words import Utterance, Word

    matcher = PhraseMatcher(config, TextNormalizer())

    def said(channel: str, text: str, at: float) -> Utterance:
        return Utterance(channel, at, at + 2, text, (Word(at, at + 2, text, 0.9),))

    sound = Acoustics(60.0, {"agent": 0, "customer": 1}, {"agent": [], "customer": []}, (), (),
                      {"agent": -20.0, "customer": -25.0}, {"agent": [], "customer": []})
    agent_first = (said("agent", "您好，中联融资客服中心，工号1023，请问有什么可以帮您", 1.0),
                   said("customer", "我想查一下还款日", 4.0))
    assert decide_roles(sound, agent_first, matcher=matcher, settings=config.channels).how == "confirmed"
    customer_first = tuple(dataclasses.replace(u, channel={"agent": "customer", "customer": "agent"}[u.channel])
                           for u in agent_first)
    decision = decide_roles(sound, customer_first, matcher=matcher, settings=config.channels)
    assert (decision.how, decision.agent, decision.customer) == ("swapped", 1, 0)
    relabelled, words = swap_roles(sound, customer_first)
    assert relabelled.roles == {"agent": 1, "customer": 0} and relabelled.levels_dbfs["customer"] == -20.0
    assert [u.channel for u in words] == ["agent", "customer"]
    # too close to call: the side that says more is the agent's, and the decision is doubtful (review), the
    # same whichever channel the recorder put the agent on
    slight = (said("agent", "嗯好的", 1.0), said("customer", "请您稍等一下", 4.0))
    doubt = decide_roles(sound, slight, matcher=matcher, settings=config.channels)
    assert (doubt.how, doubt.agent, doubt.customer) == ("doubtful", 1, 0)
    mirrored = tuple(dataclasses.replace(u, channel={"agent": "customer", "customer": "agent"}[u.channel])
                     for u in slight)
    assert (decide_roles(sound, mirrored, matcher=matcher, settings=config.channels).how,
            decide_roles(sound, mirrored, matcher=matcher, settings=config.channels).agent) == ("doubtful", 0)
    tie = (said("agent", "请您稍等", 1.0), said("customer", "请您稍等一下", 4.0))
    assert decide_roles(sound, tie, matcher=matcher, settings=config.channels).agent == 0   # a tie: as configured
    one_sided = (said("customer", "请您稍等一下", 4.0),)           # the agent's side silent: never turned round
    assert (decide_roles(sound, one_sided, matcher=matcher, settings=config.channels).agent) == 0
    nothing = (said("agent", "嗯", 1.0), said("customer", "对", 4.0))
    assert decide_roles(sound, nothing, matcher=matcher, settings=config.channels).how == "confirmed"
    off = dataclasses.replace(config.channels, detect=False)
    assert decide_roles(sound, customer_first, matcher=matcher, settings=off).how == "configured"
    mono = dataclasses.replace(sound, roles={"mixed": 0})
    assert decide_roles(mono, agent_first, matcher=matcher, settings=config.channels) is None
    assert json.dumps(decision.to_dict())                 # the result's audio.roles is JSON
