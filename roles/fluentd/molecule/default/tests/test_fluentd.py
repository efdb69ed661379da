"""The fluentd role where fluent-package cannot be installed: users, folders, keys and checked config."""

from __future__ import annotations

import testinfra

testinfra_hosts = ["podman://mctl-fluentd-fwd"]
CONF = "/etc/fluent/fluentd.conf"


def test_forwarder_user_reads_the_event_log(host):
    user = host.user("_fluentd")
    assert user.exists and "minectl" in user.groups and user.shell == "/usr/sbin/nologin"


def test_forwarder_config_is_checked_and_private(host):
    conf = host.file(CONF)
    assert conf.user == "root" and conf.group == "_fluentd" and conf.mode == 0o640
    assert host.run(f"/usr/local/sbin/fluentd-config-check {CONF}").rc == 0
    text = conf.content_string
    assert "path /var/lib/minectl/events/events.log" in text
    assert r"expression /^\x1E?(?<message>[^\r]*)\r?$/" in text
    assert "transport tls" in text and "tls_cert_path /etc/fluent/tls/aggregator-ca.crt" in text
    assert "shared_key molecule-TEST-ONLY-shared-key" in text
    assert "require_ack_response true" in text
    assert "@type file" in text and "path /var/lib/fluent/buffer/forward" in text
    assert "overflow_action block" in text and "retry_forever true" in text
    assert "host aggregator" in text


def test_checker_rejects_a_broken_config(host):
    host.run(f"sed '0,/<\\/security>/{{/<\\/security>/d}}' {CONF} > /tmp/broken.conf")
    bad = host.run("/usr/local/sbin/fluentd-config-check /tmp/broken.conf")
    assert bad.rc == 1 and "closes" in bad.stderr
    host.run(f"sed 's/^    shared_key .*/    shared_key/' {CONF} > /tmp/nokey.conf")
    nokey = host.run("/usr/local/sbin/fluentd-config-check /tmp/nokey.conf")
    assert nokey.rc == 1 and "shared_key" in nokey.stderr


def test_forwarder_folders(host):
    for d in ("/var/lib/fluent/pos", "/var/lib/fluent/buffer", "/var/lib/fluent/bad"):
        f = host.file(d)
        assert f.user == "_fluentd" and f.mode == 0o750, d
    assert host.file("/etc/fluent/tls/aggregator-ca.crt").content_string.startswith("-----BEGIN CERTIFICATE")


def test_aggregator_writes_the_seed_format_and_keeps_its_key_private():
    agg = testinfra.get_host("podman://mctl-fluentd-agg")
    conf = agg.file(CONF).content_string
    assert agg.run(f"/usr/local/sbin/fluentd-config-check {CONF}").rc == 0
    assert "path /var/log/minectl/_data/data.%Y%m%d" in conf
    assert "compress gzip" in conf and "append true" in conf
    assert "time_format %Y%m%dT%H%M%S%z" in conf and "@type out_file" in conf
    assert "@type kafka2" in conf and "brokers kafka1:9093,kafka2:9093" in conf
    key = agg.file("/etc/fluent/tls/aggregator.key")
    assert key.mode == 0o640 and key.group == "_fluentd" and "PRIVATE KEY" in key.content_string
    archive = agg.file("/var/log/minectl/_data")
    assert archive.is_directory and archive.user == "_fluentd"
    assert "minectl" not in agg.user("_fluentd").groups
