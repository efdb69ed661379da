"""Proof that the simulator speaks the real protocols: pyasic (from PyPI) identifies the
simulated Antminers and reads their hashrate, temperatures and fans (RPC on 4028 + HTTP
digest CGI on 80), and agrees with our own poller."""

from __future__ import annotations

import asyncio

import pytest

from minectl_py.miner.poll import poll_miner
from tests.simfleet import start_fleet

pyasic = pytest.importorskip("pyasic")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet():
    f = start_fleet(["s19", "s9", "btminer", "s19:fan_failed,board_failed"], http=True)
    yield f
    f.stop()


async def identify_and_read(ip: str):
    miner = await pyasic.get_miner(ip)
    assert miner is not None, f"pyasic did not recognize {ip}"
    return miner, await miner.get_data()


def test_pyasic_identifies_and_reads_simulated_antminers(fleet):
    async def go():
        return await asyncio.gather(*(identify_and_read(ip) for ip in fleet.addresses[:3]))

    (s19, d19), (s9, d9), (wm, _dwm) = asyncio.run(go())
    assert type(s19).__name__ == "BMMinerS19Pro" and s19.model.startswith("S19 Pro")
    assert type(s9).__name__ == "BMMinerS9" and s9.model.startswith("S9")
    assert type(wm).__name__ == "BTMinerM30SV10"
    for d, nominal, fans, chips in ((d19, 110.0, 4, 114), (d9, 13.5, 2, 63)):
        th = float(d.hashrate.into(d.hashrate.unit.TH).rate) if hasattr(d.hashrate, "into") else float(d.hashrate)
        assert 0.9 * nominal < th < 1.1 * nominal
        assert len(d.fans) >= fans
        assert all(3000 < f.speed < 7000 for f in d.fans[:fans])
        assert len(d.hashboards) == 3 and all(b.chips == chips for b in d.hashboards)
        assert all(40 < (b.temp or 0) < 100 and 40 < (b.chip_temp or 0) < 110 for b in d.hashboards)
        assert d.uptime and d.uptime > 0 and d.pools[0].active
    assert d19.mac.lower() == fleet.show(fleet.addresses[0])["mac"]  # from get_system_info.cgi
    # pyasic and our poller read the same figures
    ours = asyncio.run(poll_miner(fleet.addresses[1])).data
    assert [b.chips for b in ours.boards] == [b.chips for b in d9.hashboards]
    theirs = sorted(f.speed for f in d9.fans if f.speed)
    assert len(ours.fans) == len(theirs) and all(
        abs(a - b) < 200 for a, b in zip(sorted(ours.fans), theirs, strict=True)
    )


def test_pyasic_sees_faults(fleet):
    _, d = asyncio.run(identify_and_read(fleet.addresses[3]))
    assert any(f.speed == 0 for f in d.fans)
    assert sorted(b.chips or 0 for b in d.hashboards) == [0, 114, 114]
