"""The camera's video bitrate from its viewers' receiver reports (camera/bitrate.py)."""

from __future__ import annotations

import pytest

from alexa_doorbell.camera import bitrate
from alexa_doorbell.camera.bitrate import Report, UplinkBitrate, ViewerPath


def report(loss: float, jitter: float = 5.0, sent: int = 0) -> Report:
    return Report(fraction_lost=loss, jitter_ms=jitter, packets_sent=0, bytes_sent=sent)


def steady(rate: int = 1_000_000, ceiling: int = 2_000_000) -> ViewerPath:
    path = ViewerPath(ceiling=ceiling, rate=rate)
    path.ramping = False
    return path


def test_clean_reports_raise_by_5_percent_at_most_once_a_second() -> None:
    path = steady()
    assert path.on_report(report(0.0), now=10.0) == 1_050_000
    assert path.on_report(report(0.01), now=10.5) == 1_050_000  # too soon after the last
    assert path.on_report(report(0.01), now=11.1) == 1_102_500


@pytest.mark.parametrize("loss", [0.02, 0.05, 0.10])
def test_loss_between_2_and_10_percent_holds_once(loss: float) -> None:
    path = steady()
    assert path.on_report(report(loss), now=10.0) == 1_000_000
    # Twice running: a full drop-tail queue that a hold does not drain.
    assert path.on_report(report(loss), now=11.0) == int(1_000_000 * (1 - 0.5 * loss))
    assert path.lost_at == 1_000_000


def test_near_where_it_lost_it_probes_gently() -> None:
    path = steady(rate=900_000)
    path.lost_at = 1_000_000
    assert path.on_report(report(0.0), now=10.0) == 918_000  # +2 %, not +5 %
    path.rate = 800_000
    assert path.on_report(report(0.0), now=11.0) == 840_000


def test_a_growing_round_trip_stops_the_raise() -> None:
    path = steady()
    fast = Report(0.0, 5.0, 0, 0, rtt_ms=40.0)
    slow = Report(0.0, 5.0, 0, 0, rtt_ms=40.0 + bitrate.QUEUE_HOLD_MS + 5)
    assert path.on_report(fast, now=10.0) == 1_050_000
    assert path.on_report(slow, now=11.0) == 1_050_000


def test_one_decrease_per_second() -> None:
    path = steady()
    assert path.on_report(report(0.3), now=10.0) == 850_000
    assert path.on_report(report(0.3), now=10.6) == 850_000  # still the loss from before
    assert path.on_report(report(0.3), now=11.1) == 722_500


def test_heavy_loss_lowers_by_half_the_loss_and_to_what_got_through() -> None:
    path = steady()
    assert path.on_report(report(0.2), now=10.0) == 900_000  # 1 - 0.5 * 0.2
    # Next report, 1 s later: 100 kB sent (800 kbit/s), 20 % lost: 0.9 * 640 kbit/s,
    # below 900 * (1 - 0.1).
    path._last = (10.0, 0)
    assert path.on_report(report(0.2, sent=100_000), now=11.0) == 576_000
    # What got through says less than half: one decrease halves it, no more.
    path._last = (11.0, 0)
    assert path.on_report(report(0.2, sent=20_000), now=12.0) == 288_000


def test_a_report_begun_before_the_last_decrease_does_not_lower_again() -> None:
    path = steady()
    path._last = (9.5, 0)
    path.on_nacks(packets_sent=0, bytes_sent=0, now=9.6)
    for seq in range(30):
        path.allow_retransmission(seq, now=9.7)
    path.on_nacks(packets_sent=100, bytes_sent=0, now=9.8)  # NACKs: 30 % lost
    assert path.rate == 850_000
    # The report that follows covers 9.5-11.0: the same loss, mostly from before.
    assert path.on_report(report(0.3, sent=10_000), now=11.0) == 850_000
    # Fresh: 800 kbit/s sent, 30 % lost; what got through bounds it.
    fresh = path.on_report(report(0.3, sent=110_000), now=12.0)
    assert fresh == int(bitrate.DELIVERED_MARGIN * 800_000.0 * (1 - 0.3))


def test_a_growing_queue_stops_the_raise() -> None:
    path = steady()
    assert path.on_report(report(0.0, jitter=bitrate.JITTER_HOLD_MS + 1), now=10.0) == 1_000_000


def test_slow_start_until_the_first_loss() -> None:
    path = ViewerPath(ceiling=2_000_000, rate=600_000)
    assert path.on_report(report(0.0), now=1.0) == 750_000
    assert path.on_report(report(0.03), now=2.0) == 750_000  # loss: ramping ends, hold
    assert not path.ramping
    assert path.on_report(report(0.0), now=3.0) == 787_500


def test_bounds_hold() -> None:
    path = steady(rate=1_950_000, ceiling=2_000_000)
    assert path.on_report(report(0.0), now=10.0) == 2_000_000  # the ceiling (b=AS)
    low = steady(rate=200_000)
    assert low.on_report(report(0.9), now=10.0) == bitrate.MIN_BITRATE


def test_adaptation_off_keeps_the_full_rate() -> None:
    path = ViewerPath(ceiling=2_000_000, rate=1_000_000, adapt=False)
    assert path.on_report(report(0.5), now=10.0) == 1_000_000
    uplink = UplinkBitrate(1_935_000, lambda b: None, adapt=False)
    assert uplink.add_viewer(offer_kbps=2500).rate == uplink.target == 1_935_000


def test_one_bitrate_for_all_the_lowest_path_and_the_budget_share() -> None:
    applied: list[int] = []
    uplink = UplinkBitrate(1_935_000, applied.append, budget=4_000_000)
    first = uplink.add_viewer(offer_kbps=2500)
    assert first.ceiling == 1_935_000  # below b=AS:2500 (less RTP overhead)
    assert uplink.target == first.rate == int(1_935_000 * bitrate.START_FRACTION)
    first.ramping = False
    first.rate = 1_900_000
    uplink.update()
    assert uplink.target == 1_900_000
    second = uplink.add_viewer(offer_kbps=2500)
    assert second.rate == 1_900_000  # starts where the others are
    # 4000 kbit/s for two: 2000 less audio each.
    assert uplink.share() == 1_950_000 and uplink.target == 1_900_000
    uplink.add_viewer(offer_kbps=2500)
    assert uplink.target == 4_000_000 // 3 - bitrate.AUDIO_ALLOWANCE  # three share it
    second.ramping = False
    second.on_report(report(0.8), now=100.0)  # one congested viewer lowers it for all
    assert uplink.target == second.rate == 1_140_000
    assert applied[-1] == 1_140_000
    uplink.remove_viewer(second)  # it leaves: the others' paths and their share again
    assert uplink.target == 1_900_000 and applied[-1] == 1_900_000


def test_a_small_viewer_offer_caps_the_bitrate() -> None:
    uplink = UplinkBitrate(1_935_000, lambda b: None)
    path = uplink.add_viewer(offer_kbps=500)
    assert path.ceiling == 475_000


@pytest.mark.parametrize("rate", [400_000, 2_000_000])
def test_retransmissions_take_at_most_a_quarter_of_the_rate(rate: int) -> None:
    path = steady(rate=rate)
    sent = sum(path.allow_retransmission(n, now=10.0 + n * 0.001) for n in range(2000))
    allowed = bitrate.RETRANSMIT_SHARE * rate / 8 * (2.0 + bitrate.RETRANSMIT_BURST)
    assert sent * bitrate.PACKET_BYTES <= allowed + bitrate.PACKET_BYTES
    assert sent * bitrate.PACKET_BYTES >= 0.8 * allowed
    assert path.retransmits_refused == 2000 - sent


def test_heavy_loss_in_nacks_lowers_the_rate_before_the_next_report() -> None:
    path = steady()
    path.on_nacks(packets_sent=0, bytes_sent=0, now=10.0)
    for seq in range(30):  # 30 of the 100 packets sent NACKed, some of them twice
        path.allow_retransmission(seq, now=10.1)
        path.allow_retransmission(seq, now=10.2)
    path.on_nacks(packets_sent=100, bytes_sent=120_000, now=10.3)
    assert path.rate == 850_000  # 1 - 0.5 * 0.3, at once
    path.on_nacks(packets_sent=200, bytes_sent=240_000, now=10.5)
    assert path.rate == 850_000  # one decrease a second


def test_a_few_nacks_leave_it_to_the_reports() -> None:
    path = steady()
    path.on_nacks(packets_sent=0, bytes_sent=0, now=10.0)
    for seq in range(5):
        path.allow_retransmission(seq, now=10.1)
    path.on_nacks(packets_sent=100, bytes_sent=120_000, now=10.3)
    assert path.rate == 1_000_000
