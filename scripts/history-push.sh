#!/usr/bin/env bash
# Appends to the infergate history kept on a git branch, and pushes, with a
# bounded retry when another job pushed first.
#
#   scripts/history-push.sh [--attempts N] REMOTE BRANCH DIR -- COMMAND [ARG...]
#
# Clones BRANCH of REMOTE into DIR (a new folder), or starts BRANCH there
# as an orphan branch when REMOTE has none yet; runs COMMAND inside DIR
# (e.g. `infergate history append --results "$PWD/results.json" --store .`),
# commits what it changed and pushes it. When the push is refused because the
# branch moved (another job appended first), it fetches, rebases its commit
# onto the new tip and pushes again: the history files only grow by whole
# lines, and `*.jsonl merge=union` (in the branch's .gitattributes and in
# DIR/.git/info/attributes) merges two appends to one file by keeping both
# lines, the one pushed first first. If a rebase still stops, the commit is
# dropped and COMMAND runs again on the new tip. At most N attempts
# (default 5), with a growing, jittered pause between them.
#
# Exit status: COMMAND's when it fails (nothing is pushed), 1 when every
# push attempt failed, 2 for wrong arguments, 0 otherwise (also when COMMAND
# changed nothing). Credentials come from the environment (e.g.
# GIT_CONFIG_COUNT/KEY/VALUE with an http.extraheader), never from DIR's config.
#
# Environment: HISTORY_COMMIT_MESSAGE (the commit message), HISTORY_PUSH_DELAY
# (seconds of the first pause, default 2; 0 in tests), GIT_AUTHOR_NAME and
# friends (default author: infergate). Test hook, not for users:
# INFERGATE_TEST_BEFORE_PUSH, a shell command run before each push attempt.
set -euo pipefail

usage() {
  echo "usage: $0 [--attempts N] REMOTE BRANCH DIR -- COMMAND [ARG...]" >&2
  exit 2
}

attempts=5
if [ "${1:-}" = "--attempts" ]; then
  [ "$#" -ge 2 ] || usage
  attempts=$2
  shift 2
fi
case "$attempts" in
  '' | *[!0-9]*) usage ;;
esac
[ "$attempts" -ge 1 ] || usage
[ "$#" -ge 5 ] && [ "$4" = "--" ] || usage
remote=$1
branch=$2
dir=$3
shift 4

if ! git check-ref-format --branch "$branch" > /dev/null 2>&1; then
  echo "history-push: '$branch' is not a valid branch name" >&2
  exit 2
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2> /dev/null)" ]; then
  echo "history-push: $dir exists and is not empty; give a new folder" >&2
  exit 2
fi

message=${HISTORY_COMMIT_MESSAGE:-"infergate history: append a run"}
delay=${HISTORY_PUSH_DELAY:-2}
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-infergate}
export GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-infergate@users.noreply.github.com}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}

# A local path stays valid from inside DIR.
if [ -d "$remote" ]; then
  remote=$(cd "$remote" && pwd)
fi
found=0
git ls-remote --exit-code --heads "$remote" "refs/heads/$branch" > /dev/null || found=$?
if [ "$found" -eq 0 ]; then
  git clone --quiet --no-tags --single-branch --branch "$branch" "$remote" "$dir"
elif [ "$found" -ne 2 ]; then
  echo "history-push: cannot read the branches of the remote (git ls-remote exit $found)" >&2
  exit 1
else
  echo "history-push: $branch does not exist yet: starting it as an orphan branch"
  git init --quiet "$dir"
  git -C "$dir" checkout --quiet --orphan "$branch"
  git -C "$dir" remote add origin "$remote"
  printf '%s\n' '# Appends to the history from two jobs merge by keeping both lines.' '*.jsonl merge=union' \
    > "$dir/.gitattributes"
fi
# Also for a branch whose .gitattributes someone removed.
mkdir -p "$dir/.git/info"
echo '*.jsonl merge=union' >> "$dir/.git/info/attributes"

# Runs COMMAND in DIR and commits; returns 1 when there is nothing to commit.
append_and_commit() {
  local code=0
  (cd "$dir" && "$@") || code=$?
  if [ "$code" -ne 0 ]; then
    echo "history-push: the command failed (exit $code); nothing was pushed" >&2
    exit "$code"
  fi
  git -C "$dir" add --all
  if git -C "$dir" diff --cached --quiet; then
    return 1
  fi
  git -C "$dir" commit --quiet --message "$message"
}

if ! append_and_commit "$@"; then
  echo "history-push: the command changed nothing; nothing to push"
  exit 0
fi

attempt=1
while :; do
  if [ -n "${INFERGATE_TEST_BEFORE_PUSH:-}" ]; then
    bash -c "$INFERGATE_TEST_BEFORE_PUSH"
  fi
  if git -C "$dir" push --quiet origin "HEAD:refs/heads/$branch"; then
    echo "history-push: pushed $(git -C "$dir" rev-parse --short HEAD) to $branch (attempt $attempt of $attempts)"
    exit 0
  fi
  if [ "$attempt" -ge "$attempts" ]; then
    echo "history-push: the push to $branch failed $attempts times; giving up (the run is not in the history)" >&2
    exit 1
  fi
  # Another job pushed first: wait a little (jittered, so that racing jobs part), then catch up.
  pause=$((delay * attempt + (delay > 0 ? RANDOM % (delay + 1) : 0)))
  echo "history-push: the push was refused (attempt $attempt of $attempts); fetching, rebasing, retrying in ${pause}s" >&2
  sleep "$pause"
  attempt=$((attempt + 1))
  if ! git -C "$dir" fetch --quiet --no-tags origin "+refs/heads/$branch:refs/remotes/origin/$branch"; then
    continue
  fi
  if ! git -C "$dir" rebase --quiet "origin/$branch" > /dev/null 2>&1; then
    echo "history-push: the rebase stopped; appending again on the new tip" >&2
    git -C "$dir" rebase --abort > /dev/null 2>&1 || true
    git -C "$dir" reset --quiet --hard "origin/$branch"
    if ! append_and_commit "$@"; then
      echo "history-push: on the new tip the command changed nothing; nothing to push"
      exit 0
    fi
  fi
done
