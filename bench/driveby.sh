#!/usr/bin/env bash
# Drive-bys over a real network stack (issue 18): a van namespace runs the
# real `otavan serve` and dnsmasq (the van's DHCP server) on a bridge; each
# meter is a namespace with a veth to that bridge and a real meter
# (`otavan device update --window-s` on its own root: the meter itself
# tries again after a cut while its WiFi window lasts, and takes the
# rehearsal's wifi.apply_s to apply). The van drives the
# town's streets past the meters at the scenario's speed; every second each
# meter's link follows its distance to the van: down out of WiFi range, up
# at contact start (the meter then asks DHCP for an address and runs its
# update), its rate (tbf) and loss (nftables numgen, both ways) falling
# towards the edge of range, down again at contact end.
#
# Usage: sudo bench/driveby.sh [--meters N] [--streets K] [--street-m M]
#            [--speed-kmh S] [--passes P] [--power-cut PERCENT]
#            [--firmware-kb KB] [--slack-s S] [--drops-per-min D]
#            [--drop-s S] [--seed N] [--cases] [--dhcp-ping] [--out DIR]
# --streets K: the first K streets of the town (100 m apart), driven as a
#   serpentine, each from 150 m before its start to 150 m past M.
# --passes P: the van drives the route P times (a meter not updated on
#   one pass tries again on the next).
# --firmware-kb KB: the target's firmware replaced by KB of random bytes
#   (deltas off), so that cuts and power cuts land mid-transfer.
# --slack-s S: a meter's WiFi window lasts S s past its contact's end
#   (the rehearsal's window_slack_s, 120).
# --drops-per-min D, --drop-s S: a meter's link in range drops at the
#   town's faults.link_drops_per_min (0.2) for S s (2: the loss of the
#   access point noticed and association again, est) and comes back.
# --power-cut PERCENT: a meter's power is cut (kill -9) in the middle of
#   PERCENT of its applies; it restarts (`device boot`, which undoes the
#   half-done apply) and, as the LoRa trigger does (a WiFi session runs at
#   most once), waits for the next pass (the rehearsal of the route draws
#   its cuts at the same rate, faults.power_cut_per_apply).
# --seed N: the drops' and the power cuts' draws.
# --cases: the issue's bad conditions on the first meters of the first
#   street, on the first pass: a DHCP lease that never comes
#   (dhcp-never), a link that drops during the manifest (manifest-drop),
#   a van that leaves during the firmware write (firmware-leave, needs
#   --firmware-kb), 30 % loss both ways all through the contact
#   (edge-loss). The run fails when a case meter ends other than it must.
# --dhcp-ping: dnsmasq's default ARP check of an address before offering
#   it (the van runs it with --no-ping: the check costs a meter seconds of
#   its contact; docs/benchmarks.md, "Drive-bys").
# Needs root, ip (iproute2), tc, nft, dnsmasq and busybox (udhcpc); it
# installs what is missing with apt-get. Traffic stays inside its own
# namespaces (10.77.0.0/24); every namespace and process it made is
# removed on exit, also when interrupted (Ctrl-C, SIGTERM). One drive-by
# at a time (a lock): the namespaces' names are global.
#
# The geometry is the rehearsal's: meters.csv of `otavan rehearse
# examples/town.toml` (positions, WiFi ranges and each meter's
# flash-bound goodput). The link model (rate and loss by distance) is an
# estimate (docs/benchmarks.md, "Drive-bys").
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
meters=40
streets=1
street_m=600
speed_kmh=""
passes=1
power_cut=5
firmware_kb=""
slack_s=120
drops_per_min=$(awk -F' *= *' '/^link_drops_per_min/{print $2+0}' "$here/examples/town.toml")
drop_s=2
seed=1
cases=""
dhcp_ping=--no-ping
out="$here/bench/out/driveby"
while [ $# -gt 0 ]; do
    case "$1" in
        --meters) meters="$2"; shift 2 ;;
        --streets) streets="$2"; shift 2 ;;
        --street-m) street_m="$2"; shift 2 ;;
        --speed-kmh) speed_kmh="$2"; shift 2 ;;
        --passes) passes="$2"; shift 2 ;;
        --power-cut) power_cut="$2"; shift 2 ;;
        --firmware-kb) firmware_kb="$2"; shift 2 ;;
        --slack-s) slack_s="$2"; shift 2 ;;
        --drops-per-min) drops_per_min="$2"; shift 2 ;;
        --drop-s) drop_s="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --cases) cases=1; shift ;;
        --dhcp-ping) dhcp_ping=""; shift ;;
        --out) out="$2"; shift 2 ;;
        *) echo "driveby: unknown argument $1" >&2; exit 2 ;;
    esac
done
die() { echo "driveby: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "driveby: needs root (network namespaces)" >&2; exit 2; }
[ -z "$cases" ] || [ -n "$firmware_kb" ] || die "--cases needs --firmware-kb (a firmware write to leave during)"
for tool in dnsmasq busybox nft; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base busybox nftables
        break
    fi
done
exec 9>"${TMPDIR:-/tmp}/otavan-driveby.lock"
flock -n 9 || die "another drive-by is running (${TMPDIR:-/tmp}/otavan-driveby.lock)"

# Link model (est): full rate to half the range, then down to a tenth at
# the edge; loss from 0 at half the range to 30 % at the edge. No meter
# takes data faster than it writes its flash: each meter's rate is capped
# at its own goodput from the rehearsal (goodput_kb_s, drawn from
# wifi.goodput_min_kb_s.._max_kb_s), grossed up by the 66 bytes of
# Ethernet, IP and TCP headers on each 1448-byte segment, so that TCP's
# flow control paces the transfer as that meter's flash would.
full_kbit=20000
edge_loss_pct=30
header_gross=1.046
RANDOM=$seed

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

# The town's geometry: meters within 50 m of the first K streets, up to M
# along them, street by street.
"$otavan" rehearse "$here/examples/town.toml" --out "$work/rehearsal" >"$work/rehearse.log" 2>&1 ||
    { cat "$work/rehearse.log" >&2; die "the rehearsal of examples/town.toml failed"; }
[ -s "$work/rehearsal/meters.csv" ] || die "the rehearsal wrote no meters.csv ($work/rehearse.log)"
[ -n "$speed_kmh" ] || speed_kmh=$(awk -F' *= *' '/^speed_kmh/{print $2+0}' "$here/examples/town.toml")
apply_s=$(awk -F' *= *' '/^apply_s/{print $2+0}' "$work/rehearsal/scenario.toml")
awk -F, -v k="$streets" -v l="$street_m" 'NR > 1 && $2 >= 0 && $2 <= l {
        s = int(($3 + 50) / 100); if ($3 > -50 && s < k && $3 - 100 * s < 50)
            print s "," $1 "," $2 "," $3 "," $8 "," $6 "," $16
    }' "$work/rehearsal/meters.csv" | sort -t, -k1,1n -k3,3n | head -n "$meters" |
    cut -d, -f2- >"$work/meters.txt"
count=$(wc -l <"$work/meters.txt")
[ "$count" -gt 0 ] || die "no meters on the first $streets streets' first ${street_m} m"
echo "driveby: $count meters on $streets streets (first ${street_m} m each), van at ${speed_kmh} km/h, $passes passes"

# The bad conditions, one per meter, on the first meters of street 0.
declare -A case_of
if [ -n "$cases" ]; then
    i=0
    for c in dhcp-never manifest-drop firmware-leave edge-loss; do
        i=$((i + 1))
        id=$(sed -n "${i}p" "$work/meters.txt" | cut -d, -f1)
        [ -n "$id" ] || die "--cases needs at least 4 meters"
        case_of[$id]=$c
    done
fi
mac() { printf '02:77:%02x:%02x:%02x:%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }

# The release: the sample's, its target firmware optionally enlarged.
release="$work/release"
cp -r "$here/examples/releases" "$release"
target=$(ls "$release" | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -1)
serve_args=()
if [ -n "$firmware_kb" ]; then
    head -c "$((firmware_kb * 1024))" /dev/urandom >"$release/firmware_$target.bin"
    serve_args+=(--no-deltas)
fi
echo "$firmware_kb" >"$work/firmware_kb"
echo "$drop_s" >"$work/drop_s"

# The van.
ip netns add "$van_ns"
ip -n "$van_ns" link set lo up
ip -n "$van_ns" link add br0 type bridge
ip -n "$van_ns" addr add 10.77.0.1/24 dev br0
ip -n "$van_ns" link set br0 up
ip netns exec "$van_ns" "$otavan" serve --root "$release" --bind 10.77.0.1 --port 8000 \
    --db "$work/otavan.db" "${serve_args[@]}" >"$work/serve.log" 2>&1 &
disown
ignore=()
for id in "${!case_of[@]}"; do
    [ "${case_of[$id]}" != dhcp-never ] || ignore+=("--dhcp-host=$(mac "$id"),ignore")
done
ip netns exec "$van_ns" dnsmasq --no-daemon --conf-file=/dev/null --interface=br0 \
    --bind-interfaces --dhcp-range=10.77.0.10,10.77.0.250,255.255.255.0,10m $dhcp_ping \
    "${ignore[@]}" --dhcp-leasefile="$work/leases" --port=0 --log-dhcp >"$work/dnsmasq.log" 2>&1 &
disown

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
while IFS=, read -r id x y range version _; do
    ns="$prefix-m$id"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "m$id" netns "$van_ns" type veth peer name eth0 netns "$ns"
    ip -n "$ns" link set eth0 address "$(mac "$id")"
    ip -n "$van_ns" link set "m$id" master br0
    ip netns exec "$ns" nft add table inet link
    ip netns exec "$ns" nft add table inet case
    root="$out/meters/$id"
    mkdir -p "$root"
    cp -r "$release/$version/." "$root/"
    "$otavan" device init --root "$root" --version "$version" \
        --firmware "$release/firmware_1.0.0.bin" >/dev/null 2>&1
done <"$work/meters.txt"

# The cases' link faults, for the first pass: a dead TCP link from the van
# once the meter has received a few bytes of it (the manifest's first
# packet) or half the firmware.
case_faults() {
    local id="$1" quota
    case "${case_of[$id]:-}" in
        manifest-drop) quota=300 ;;
        firmware-leave) quota=$((firmware_kb * 512)) ;;
        *) return ;;
    esac
    ip netns exec "$prefix-m$id" nft "add chain inet case in { type filter hook input priority -10; }; add rule inet case in ip saddr 10.77.0.1 tcp sport 8000 quota over $quota bytes drop"
}

# The route: a serpentine over the streets, each from 150 m before x = 0
# to 150 m past its length (beyond the longest WiFi range, 150 m).
speed_ms=$(awk -v k="$speed_kmh" 'BEGIN { print k / 3.6 }')
route_m=$(awk -v k="$streets" -v l="$street_m" 'BEGIN { print k * (l + 300) + (k - 1) * 100 }')
drive_s=$(awk -v r="$route_m" -v v="$speed_ms" 'BEGIN { print int(r / v) + 1 }')
# The link of every meter in range and not in a drop, second by second
# ("t id kbit loss"), each meter's contacts ("id,from_s,to_s") and its
# drops ("id,at_s").
awk -F, -v k="$streets" -v l="$street_m" -v v="$speed_ms" -v n="$drive_s" \
    -v f="$full_kbit" -v g="$header_gross" -v e="$edge_loss_pct" -v contacts="$work/contacts.csv" \
    -v pd="$(awk -v d="$drops_per_min" 'BEGIN { print d / 60 }')" -v ds="$drop_s" -v seed="$seed" \
    -v drops="$work/drops.csv" '
    { id[NR] = $1; mx[NR] = $2; my[NR] = $3; r[NR] = $4; cap[NR] = int($6 * 8 * g) }
    END {
        srand(seed)
        seg = l + 300
        for (t = 0; t <= n; t++) {
            s = v * t; i = int(s / (seg + 100)); p = s - i * (seg + 100)
            if (i >= k) { i = k - 1; p = seg }
            if (p <= seg) { y = 100 * i; x = (i % 2 == 0) ? p - 150 : l + 150 - p }
            else { y = 100 * i + (p - seg); x = (i % 2 == 0) ? l + 150 : -150 }
            for (m = 1; m <= NR; m++) {
                d = sqrt((mx[m] - x) ^ 2 + (my[m] - y) ^ 2)
                if (d <= r[m]) {
                    q = d / r[m]; rate = q < 0.5 ? 1 : 1 - 1.8 * (q - 0.5)
                    loss = q < 0.5 ? 0 : e * (q - 0.5) * 2
                    kbit = int(f * rate / 100) * 100; if (kbit > cap[m]) kbit = cap[m]
                    if (!(m in down) || down[m] <= t) {
                        if (rand() < pd) { down[m] = t + ds; print id[m] "," t > drops }
                        else printf "%d %s %d %d\n", t, id[m], kbit, loss
                    }
                    if (!(m in on)) { on[m] = t; start[m] = t }
                    last[m] = t
                } else if (m in on) {
                    print id[m] "," start[m] "," last[m] + 1 > contacts; delete on[m]
                }
            }
        }
        for (m in on) print id[m] "," start[m] "," last[m] + 1 > contacts
    }' "$work/meters.txt" >"$work/timeline.txt"
touch "$work/contacts.csv" "$work/drops.csv"
echo "driveby: a pass drives ${route_m} m in ${drive_s} s"

# One meter's contact: it asks DHCP for an address until it gets one or
# its WiFi window closes (the contact's end plus the slack), then runs its
# update once (the update tries again after a cut while the window lasts,
# and takes apply_s to apply). A meter drawn for a power cut ($5: how far
# into its apply, in seconds) has it mid-apply: kill -9 that far after its
# journal says "applying"; it restarts (`device boot`) and, as the LoRa
# trigger does (a WiFi session runs at most once), waits for the next pass.
# Rows: the pass, the update's exit, its runs (0 without a lease, else 1),
# the power cuts, when it started, got its lease, ended, and when its
# window closed.
session() {
    local id="$1" pass="$2" start="$3" closes="$4" cut_at="$5"
    local ns="$prefix-m$id" root="$out/meters/$id" log="$out/meters/$id.log" t0 t1="" rc=0 cuts=0
    t0=$(date +%s.%N)
    while [ "$(date +%s)" -lt "$closes" ]; do
        if ip netns exec "$ns" busybox udhcpc -i eth0 -n -q -t 3 -T 1 -s "$work/udhcpc.sh" \
            >>"$log" 2>&1; then
            t1=$(date +%s.%N)
            break
        fi
    done
    if [ -z "$t1" ]; then
        echo "$id,$pass,$start,no_lease,0,0,$t0,,$(date +%s.%N),$closes" >>"$work/sessions.csv"
        return
    fi
    ip netns exec "$ns" "$otavan" device update --root "$root" --server http://10.77.0.1:8000 \
        --device-id "m$id" --window-s "$((closes - $(date +%s)))" --apply-s "$apply_s" >>"$log" 2>&1 &
    local pid=$!
    if [ -n "$cut_at" ]; then
        while kill -0 "$pid" 2>/dev/null && ! grep -qs '"applying"' "$root/.otavan/state.json"; do
            sleep 0.05
        done
        sleep "$cut_at"
        if kill -9 "$pid" 2>/dev/null; then cuts=1; fi
    fi
    { wait "$pid"; } 2>/dev/null || rc=$?
    if [ "$cuts" = 1 ]; then
        ip netns exec "$ns" "$otavan" device boot --root "$root" >>"$log" 2>&1 || true
    fi
    [ "$rc" != 0 ] || touch "$work/done.$id"
    echo "$id,$pass,$start,$rc,1,$cuts,$t0,$t1,$(date +%s.%N),$closes" >>"$work/sessions.csv"
}

echo "meter,pass,contact_at_s,exit,runs,power_cuts,start,leased,end,window_closes" >"$work/sessions.csv"
declare -A contact_end
while IFS=, read -r id from to; do
    contact_end[$id]="${contact_end[$id]:-} $from:$to"
done <"$work/contacts.csv"
# The contact ("from:to") of meter $1 that second $2 is in.
contact_at() {
    local c
    for c in ${contact_end[$1]}; do
        [ "${c%%:*}" -gt "$2" ] || [ "${c##*:}" -le "$2" ] || echo "$c"
    done
}
mapfile -t timeline <"$work/timeline.txt"
declare -A running begun
sessions=()
for ((pass = 1; pass <= passes; pass++)); do
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-m"); do
        ip netns exec "$ns" nft flush table inet case
    done
    if [ "$pass" = 1 ]; then for id in "${!case_of[@]}"; do case_faults "$id"; done; fi
    declare -A up=() rate=()
    begin=$(date +%s)
    next=0
    for ((t = 0; t <= drive_s; t++)); do
        declare -A seen=()
        while [ "$next" -lt "${#timeline[@]}" ]; do
            read -r at id kbit loss <<<"${timeline[$next]}"
            [ "$at" = "$t" ] || break
            next=$((next + 1))
            seen[$id]=1
            [ "${case_of[$id]:-}" != edge-loss ] || [ "$pass" != 1 ] || { kbit=2000 loss=30; }
            if [ -z "${up[$id]:-}" ]; then
                ip -n "$van_ns" link set "m$id" up
                ip -n "$prefix-m$id" link set eth0 up
                up[$id]=1
                # A contact's first second in range (not the link's return
                # after a drop in it), no session of the meter still
                # running (its window is open: it uses this contact too),
                # not yet updated. The power cut is drawn here, in order.
                contact=$(contact_at "$id" "$t")
                if [ -n "$contact" ] && [ -z "${begun[$pass:$id:$contact]:-}" ] &&
                    [ ! -e "$work/done.$id" ] &&
                    { [ -z "${running[$id]:-}" ] || ! kill -0 "${running[$id]}" 2>/dev/null; }; then
                    begun[$pass:$id:$contact]=1
                    cut_at=""
                    if ((RANDOM % 100 < power_cut)); then
                        cut_at=$(awk -v a="$apply_s" -v r=$((RANDOM % 80 + 10)) 'BEGIN { print a * r / 100 }')
                    fi
                    session "$id" "$pass" "$t" "$((begin + ${contact##*:} + slack_s))" "$cut_at" &
                    sessions+=($!)
                    running[$id]=$!
                fi
            fi
            if [ "${rate[$id]:-}" != "$kbit $loss" ]; then
                ip netns exec "$van_ns" tc qdisc replace dev "m$id" root tbf rate "${kbit}kbit" burst 32kb latency 200ms
                ip netns exec "$prefix-m$id" nft flush table inet link
                if [ "$loss" -gt 0 ]; then
                    ip netns exec "$prefix-m$id" nft "add chain inet link in { type filter hook input priority 0; }; add rule inet link in numgen random mod 100 < $loss drop; add chain inet link out { type filter hook output priority 0; }; add rule inet link out numgen random mod 100 < $loss drop"
                fi
                rate[$id]="$kbit $loss"
            fi
        done
        for id in "${!up[@]}"; do
            if [ -z "${seen[$id]:-}" ]; then
                ip -n "$van_ns" link set "m$id" down
                unset "up[$id]" "rate[$id]"
            fi
        done
        unset seen
        sleep "$(awk -v b="$begin" -v t="$t" -v n="$(date +%s.%N)" 'BEGIN { s = b + t + 1 - n; print (s > 0 ? s : 0) }')"
    done
    for pid in "${sessions[@]}"; do wait "$pid" || true; done
    sessions=()
    echo "driveby: pass $pass done, $(ls "$work" | grep -c '^done\.') meters updated so far"
done

# Every meter is at its old or its new version, with that version's
# firmware in its boot slot, whatever happened.
sha() { sha1sum "$1" | cut -d' ' -f1; }
old_fw=$(sha "$release/firmware_1.0.0.bin")
new_fw=$(sha "$release/firmware_$target.bin")
echo "meter,x_m,y_m,range_m,from,version,pending,firmware_ok,case" >"$out/meters.csv"
while IFS=, read -r id x y range version _; do
    status=$("$otavan" device status --root "$out/meters/$id" --json)
    now=$(sed 's/.*"version":"\([^"]*\)".*/\1/' <<<"$status")
    pending=$(sed 's/.*"pending_confirm":\([a-z]*\).*/\1/' <<<"$status")
    slot=$(sed 's/.*"firmware_sha1":"\([0-9a-f]*\)".*/\1/' <<<"$status")
    fw_ok=false
    if { [ "$now" = "$version" ] && [ "$slot" = "$old_fw" ]; } ||
        { [ "$now" = "$target" ] && [ "$slot" = "$new_fw" ]; }; then fw_ok=true; fi
    echo "$id,$x,$y,$range,$version,$now,$pending,$fw_ok,${case_of[$id]:-}" >>"$out/meters.csv"
done <"$work/meters.txt"
cp "$work/sessions.csv" "$work/contacts.csv" "$work/drops.csv" "$out/"
updated=$(awk -F, -v t="$target" 'NR > 1 && $6 == t' "$out/meters.csv" | wc -l)
odd=$(awk -F, -v t="$target" 'NR > 1 && (($6 != t && $6 != $5) || $8 != "true")' "$out/meters.csv" | wc -l)
leases=$(awk -F, 'NR > 1 && $4 != "no_lease"' "$out/sessions.csv" | wc -l)
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }
median_session=$(awk -F, 'NR > 1 && $4 == 0 { print $9 - $7 }' "$out/sessions.csv" | median)
median_dhcp=$(awk -F, 'NR > 1 && $8 != "" { print $8 - $7 }' "$out/sessions.csv" | median)
# The update is abandoned 10 s past its window, once an apply under way
# (apply_s) is done: 5 s more is a failure.
late_s=$(awk -v a="$apply_s" 'BEGIN { print 15 + a }')
overrun=$(awk -F, -v l="$late_s" 'NR > 1 && $9 > $10 + l' "$out/sessions.csv" | wc -l)
echo "driveby: $updated of $count meters at $target; $leases leases (median ${median_dhcp} s);" \
    "median update run (start to exit, the apply included) ${median_session} s; $odd meters at neither their old nor the new version" \
    "(or with the other's firmware); $overrun sessions ran past their window by more than ${late_s} s"
failed=$((odd + overrun))
association=()
if [ "$median_dhcp" != - ]; then
    lease_p99=$(awk -F, 'NR > 1 && $8 != "" { print $8 - $7 }' "$out/sessions.csv" | sort -n |
        awk -v m="$median_dhcp" '{ a[NR] = $1 } END { p = a[int(NR * 0.99 + 0.5)]; print (p > m * 1.01 ? p : m * 1.01) }')
    association=(--set "wifi.assoc_median_s=$median_dhcp" --set "wifi.assoc_p99_s=$lease_p99")
fi
# The same meters, route, passes, speed, release and power cuts through
# the analytic rehearsal itself (for driveby-report.py): the town with its
# van on this serpentine. The veth has no WiFi association, so the
# rehearsal's association is the run's own DHCP leases (their median and
# 99th percentile): both then time the same steps.
waypoints=$(awk -v k="$streets" -v l="$street_m" 'BEGIN {
    for (i = 0; i < k; i++) {
        a = (i % 2 == 0) ? -150 : l + 150; b = (i % 2 == 0) ? l + 150 : -150
        printf "%s[%d,%d],[%d,%d]", (i ? "," : ""), a, 100 * i, b, 100 * i }
    }')
"$otavan" rehearse "$here/examples/town.toml" --out "$work/rehearsal-route" \
    --set 'van.route="waypoints"' --set "van.waypoints=[$waypoints]" --set "van.passes=$passes" \
    --set "van.speed_kmh=$speed_kmh" --set "release.release_dir=\"$release\"" \
    --set "release.deltas=$([ -n "$firmware_kb" ] && echo false || echo true)" \
    --set "faults.link_drops_per_min=$drops_per_min" \
    --set "faults.power_cut_per_apply=$(awk -v p="$power_cut" 'BEGIN { print p / 100 }')" \
    "${association[@]}" >"$work/rehearse-route.log" 2>&1 ||
    { cat "$work/rehearse-route.log" >&2; die "the rehearsal of the drive-by's route failed"; }

# What each case must end as: no lease, or its first pass failed with the
# meter as it was; the edge-loss meter only has to end in time.
for id in "${!case_of[@]}"; do
    c=${case_of[$id]}
    first=$(awk -F, -v m="$id" 'NR > 1 && $1 == m && $2 == 1' "$out/sessions.csv" | head -1)
    want=""
    case "$c" in
        dhcp-never) [ "$(cut -d, -f4 <<<"$first")" = no_lease ] || want="no lease" ;;
        manifest-drop | firmware-leave)
            rc=$(cut -d, -f4 <<<"$first")
            { [ -n "$first" ] && [ "$rc" != 0 ] && [ "$rc" != no_lease ]; } || want="a failed first pass" ;;
    esac
    echo "driveby: case $c (meter $id): first pass ${first:-none}${want:+, expected $want}"
    [ -z "$want" ] || failed=$((failed + 1))
done
[ "$failed" = 0 ]
