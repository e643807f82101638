# Kernel settings a scale run needs (sourced by scripts/scale.sh, not run).
# kernel_need KEY WANT WHY: raises KEY to at least WANT (APPLY_SYSCTL=1, the
# default) and prints one line saying what it found and did, or that it could not
# set it and what that will cost. KERNEL_UNSET counts the settings left short.

KERNEL_UNSET=0

kernel_need() {
  local key=$1 want=$2 why=$3 path now err
  path=/proc/sys/${key//.//}
  if [ ! -e "$path" ]; then
    printf '  %-34s n/a (not present: %s)\n' "$key" "$why"
    return 0
  fi
  now=$(awk '{print $1}' "$path")
  if [ "$now" -ge "$want" ]; then
    printf '  %-34s %s (>= %s needed: ok)\n' "$key" "$now" "$want"
    return 0
  fi
  if [ "${APPLY_SYSCTL:-1}" != 1 ]; then
    printf '  %-34s %s, NOT RAISED to %s (APPLY_SYSCTL=0): %s\n' "$key" "$now" "$want" "$why"
    KERNEL_UNSET=$((KERNEL_UNSET + 1))
    return 0
  fi
  if err=$(sysctl -q -w "$key=$want" 2>&1) && [ "$(awk '{print $1}' "$path")" -ge "$want" ]; then
    printf '  %-34s %s -> %s (raised: %s)\n' "$key" "$now" "$want" "$why"
  else
    printf '  %-34s %s, CANNOT SET to %s (%s): %s\n' "$key" "$now" "$want" "${err:-not root?}" "$why"
    KERNEL_UNSET=$((KERNEL_UNSET + 1))
  fi
}

# kernel_report KEY WHY: prints a setting the run reads but does not change.
kernel_report() {
  local key=$1 why=$2 path
  path=/proc/sys/${key//.//}
  if [ -e "$path" ]; then
    printf '  %-34s %s (not changed: %s)\n' "$key" "$(xargs <"$path")" "$why"
  else
    printf '  %-34s n/a\n' "$key"
  fi
}

# The size of the kernel's ephemeral port range (ports per source address and
# destination).
kernel_ports_per_address() {
  awk '{print $2 - $1 + 1}' /proc/sys/net/ipv4/ip_local_port_range
}
