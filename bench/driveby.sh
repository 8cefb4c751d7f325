#!/usr/bin/env bash
# Drive-bys over a real network stack (issue 18): a van namespace runs the
# real `otavan serve` and dnsmasq (the van's DHCP server) on a bridge; each
# meter is a namespace with a veth to that bridge and a real meter
# (`otavan device update` on its own root). The van drives one street of
# the town past the meters at the scenario's speed; every second each
# meter's link follows its distance to the van: down out of WiFi range,
# up at contact start (the meter then asks DHCP for an address and runs
# its update), its rate (tbf) and loss (nftables numgen, both ways)
# falling towards the edge of range, down again at contact end.
#
# Usage: sudo bench/driveby.sh [--meters N] [--street-m M] [--speed-kmh S]
#            [--power-cut PERCENT] [--dhcp-ping] [--out DIR]
# --dhcp-ping: dnsmasq's default ARP check of an address before offering
# it (the van runs it with --no-ping: the check costs a meter seconds of
# its contact; docs/benchmarks.md, "Drive-bys").
# Needs root, ip (iproute2), tc, nft, dnsmasq and busybox (udhcpc); it
# installs what is missing with apt-get. Traffic stays inside its own
# namespaces (10.77.0.0/24); every namespace and process it made is
# removed on exit, also when interrupted (Ctrl-C, SIGTERM).
#
# The geometry is the rehearsal's: meters.csv of `otavan rehearse
# examples/town.toml` (positions and WiFi ranges), the first street
# (y = 0), driven from x = -150 m to 150 m past its end. The link model (rate and loss by distance)
# is an estimate to calibrate (docs/benchmarks.md, "Drive-bys").
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
meters=40
street_m=600
speed_kmh=""
power_cut=5
dhcp_ping=--no-ping
out="$here/bench/out/driveby"
while [ $# -gt 0 ]; do
    case "$1" in
        --meters) meters="$2"; shift 2 ;;
        --street-m) street_m="$2"; shift 2 ;;
        --speed-kmh) speed_kmh="$2"; shift 2 ;;
        --power-cut) power_cut="$2"; shift 2 ;;
        --dhcp-ping) dhcp_ping=""; shift ;;
        --out) out="$2"; shift 2 ;;
        *) echo "driveby: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "driveby: needs root (network namespaces)" >&2
    exit 2
fi
for tool in dnsmasq busybox nft; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base busybox nftables
        break
    fi
done

# Link model (est): full rate to half the range, then down to a tenth at
# the edge; loss from 0 at half the range to 30 % at the edge.
full_kbit=20000
edge_loss_pct=30

prefix=ovd
van_ns="$prefix-van"
# OTAVAN_BIN: a binary already built (CI's debug build); else release.
otavan="${OTAVAN_BIN:-$here/target/release/otavan}"
[ -n "${OTAVAN_BIN:-}" ] || cargo build --release --quiet --manifest-path "$here/Cargo.toml"

cleanup() {
    set +e
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-"); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup

rm -rf "$out"
mkdir -p "$out/meters"
work="$out/work"
mkdir -p "$work"

# The town's geometry.
"$otavan" rehearse "$here/examples/town.toml" --out "$work/rehearsal" >/dev/null
[ -n "$speed_kmh" ] || speed_kmh=$(awk -F' *= *' '/^speed_kmh/{print $2+0}' "$here/examples/town.toml")
awk -F, -v street="$street_m" -v n="$meters" 'NR > 1 && $3 > -50 && $3 < 50 && $2 <= street {
        print $1 "," $2 "," $3 "," $8 "," $6
    }' "$work/rehearsal/meters.csv" | sort -t, -k2 -n | head -n "$meters" >"$work/meters.txt"
count=$(wc -l <"$work/meters.txt")
echo "driveby: $count meters on the first ${street_m} m of street 0, van at ${speed_kmh} km/h"

# The van.
ip netns add "$van_ns"
ip -n "$van_ns" link set lo up
ip -n "$van_ns" link add br0 type bridge
ip -n "$van_ns" addr add 10.77.0.1/24 dev br0
ip -n "$van_ns" link set br0 up
release="$work/release"
cp -r "$here/examples/releases" "$release"
ip netns exec "$van_ns" "$otavan" serve --root "$release" --bind 10.77.0.1 --port 8000 \
    --db "$work/otavan.db" >"$work/serve.log" 2>&1 &
ip netns exec "$van_ns" dnsmasq --no-daemon --conf-file=/dev/null --interface=br0 \
    --bind-interfaces --dhcp-range=10.77.0.10,10.77.0.250,255.255.255.0,10m $dhcp_ping \
    --dhcp-leasefile="$work/leases" --port=0 --log-dhcp >"$work/dnsmasq.log" 2>&1 &

cat >"$work/udhcpc.sh" <<'EOF'
#!/bin/sh
case "$1" in
    bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
    deconfig) ip addr flush dev "$interface" ;;
esac
EOF
chmod +x "$work/udhcpc.sh"

# The meters: a namespace, a veth (down until the van is in range), a
# provisioned root at its version.
while IFS=, read -r id x y range version; do
    ns="$prefix-m$id"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "m$id" netns "$van_ns" type veth peer name eth0 netns "$ns"
    ip -n "$van_ns" link set "m$id" master br0
    ip netns exec "$ns" nft add table inet link
    root="$out/meters/$id"
    mkdir -p "$root"
    cp -r "$release/$version/." "$root/"
    "$otavan" device init --root "$root" --version "$version" \
        --firmware "$release/firmware_1.0.0.bin" >/dev/null
done <"$work/meters.txt"

# One meter's contact: it asks DHCP for an address until it gets one or
# its WiFi window closes (the contact's end plus the rehearsal's 120 s of
# slack), then runs its update, again while the window lasts if a cut
# link failed it; a power cut (kill -9) now and then, and the restart's
# boot, after which it tries again. Rows: the last attempt's exit, the
# attempts, the power cuts, when it started, got its lease and ended.
session() {
    local id="$1" start="$2" closes="$3"
    local ns="$prefix-m$id" log="$out/meters/$id.log" t0 t1="" t2 rc=1 tries=0 cuts=0
    t0=$(date +%s.%N)
    while awk -v c="$closes" -v n="$(date +%s)" 'BEGIN { exit !(n < c) }'; do
        if ip netns exec "$ns" busybox udhcpc -i eth0 -n -q -t 3 -T 1 -s "$work/udhcpc.sh" \
            >>"$log" 2>&1; then
            t1=$(date +%s.%N)
            break
        fi
    done
    if [ -z "$t1" ]; then
        echo "$id,$start,no_lease,0,0,$t0,,$(date +%s.%N)" >>"$work/sessions.csv"
        return
    fi
    while [ "$rc" != 0 ] && { [ "$tries" = 0 ] || sleep 1; } &&
        awk -v c="$closes" -v n="$(date +%s)" 'BEGIN { exit !(n < c) }'; do
        tries=$((tries + 1))
        ip netns exec "$ns" "$otavan" device update --root "$out/meters/$id" \
            --server http://10.77.0.1:8000 --device-id "m$id" >>"$log" 2>&1 &
        local pid=$!
        rc=0
        if ((RANDOM % 100 < power_cut)); then
            sleep "0.0$((RANDOM % 9 + 1))"
            if kill -9 "$pid" 2>/dev/null; then rc=137 cuts=$((cuts + 1)); fi
            wait "$pid" 2>/dev/null || true
            ip netns exec "$ns" "$otavan" device boot --root "$out/meters/$id" >>"$log" 2>&1 || true
        else
            wait "$pid" || rc=$?
        fi
    done
    t2=$(date +%s.%N)
    echo "$id,$start,$rc,$tries,$cuts,$t0,$t1,$t2" >>"$work/sessions.csv"
}

echo "meter,contact_at_s,exit,tries,power_cuts,start,leased,end" >"$work/sessions.csv"
declare -A up ends
sessions=()
speed_ms=$(awk -v k="$speed_kmh" 'BEGIN { print k / 3.6 }')
# The van starts and ends beyond the longest WiFi range (150 m).
drive_s=$(awk -v l="$street_m" -v v="$speed_ms" 'BEGIN { print int((l + 300) / v) }')
echo "driveby: driving ${drive_s} s"
# Each meter's contact length (its chord of the street), for its window.
while IFS=, read -r id len; do ends[$id]=$len; done < <(awk -F, -v v="$speed_ms" '{
    r = $4; y = $3; print $1 "," (r > y && r > -y ? int(2 * sqrt(r * r - y * y) / v) + 1 : 0) }' "$work/meters.txt")
begin=$(date +%s)
for ((t = 0; t <= drive_s; t++)); do
    while IFS=, read -r id d range; do
        if awk -v d="$d" -v r="$range" 'BEGIN { exit !(d <= r) }'; then
            read -r kbit loss < <(awk -v d="$d" -v r="$range" -v f="$full_kbit" -v e="$edge_loss_pct" 'BEGIN {
                q = d / r; s = q < 0.5 ? 1 : 1 - 1.8 * (q - 0.5);
                l = q < 0.5 ? 0 : e * (q - 0.5) * 2;
                printf "%d %d\n", f * s, l }')
            if [ -z "${up[$id]:-}" ]; then
                ip -n "$van_ns" link set "m$id" up
                ip -n "$prefix-m$id" link set eth0 up
                ip netns exec "$van_ns" tc qdisc replace dev "m$id" root tbf rate "${kbit}kbit" burst 32kb latency 200ms
                up[$id]=1
                session "$id" "$t" "$((begin + t + ${ends[$id]} + 120))" &
                sessions+=($!)
            else
                ip netns exec "$van_ns" tc qdisc change dev "m$id" root tbf rate "${kbit}kbit" burst 32kb latency 200ms
            fi
            ip netns exec "$prefix-m$id" nft flush table inet link 2>/dev/null || true
            if [ "$loss" -gt 0 ]; then
                ip netns exec "$prefix-m$id" nft "add chain inet link in { type filter hook input priority 0; }; add rule inet link in numgen random mod 100 < $loss drop; add chain inet link out { type filter hook output priority 0; }; add rule inet link out numgen random mod 100 < $loss drop"
            fi
        elif [ "${up[$id]:-}" = 1 ]; then
            ip -n "$van_ns" link set "m$id" down
            up[$id]=gone
        fi
    done < <(awk -F, -v t="$t" -v v="$speed_ms" '{
        dx = $2 + 150 - v * t; printf "%s,%.1f,%s\n", $1, sqrt(dx * dx + $3 * $3), $4 }' "$work/meters.txt")
    sleep "$(awk -v b="$begin" -v t="$t" -v n="$(date +%s.%N)" 'BEGIN { s = b + t + 1 - n; print (s > 0 ? s : 0) }')"
done
for pid in "${sessions[@]}"; do wait "$pid" || true; done

# Every meter is at its old or its new version, whatever happened.
echo "meter,x_m,y_m,range_m,from,version,pending" >"$out/meters.csv"
while IFS=, read -r id x y range version; do
    status=$("$otavan" device status --root "$out/meters/$id")
    now=$(awk '/^version:/{print $2}' <<<"$status")
    pending=$(awk '/^pending confirm:/{print $3}' <<<"$status")
    echo "$id,$x,$y,$range,$version,$now,$pending" >>"$out/meters.csv"
done <"$work/meters.txt"
cp "$work/sessions.csv" "$out/sessions.csv"
target=$(ls "$release" | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -1)
updated=$(awk -F, -v t="$target" 'NR > 1 && $6 == t' "$out/meters.csv" | wc -l)
odd=$(awk -F, -v t="$target" 'NR > 1 && $6 != t && $6 != $5' "$out/meters.csv" | wc -l)
leases=$(awk -F, 'NR > 1 && $3 != "no_lease"' "$out/sessions.csv" | wc -l)
median_session=$(awk -F, 'NR > 1 && $3 == 0 { print $8 - $6 }' "$out/sessions.csv" | sort -n |
    awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }')
median_dhcp=$(awk -F, 'NR > 1 && $7 != "" { print $7 - $6 }' "$out/sessions.csv" | sort -n |
    awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }')
echo "driveby: $updated of $count meters at $target; $leases leases (median ${median_dhcp} s);" \
    "median session ${median_session} s; $odd meters at neither their old nor the new version"
[ "$odd" = 0 ]
