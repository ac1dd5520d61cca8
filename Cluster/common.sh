# Shared by launch.sh and stop.sh (sourced).

# Whether the process of pid file $1 runs (a zombie, killed but not yet reaped, does not).
alive() {
  [ -f "$1" ] && running "$(cat "$1")"
}

running() {  # running PID
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
