#!/usr/bin/env python3
"""A corridor environment speaking Tokenwise's JSON-lines protocol (ProcessEnvironment).

The agent starts at cell 0 of a corridor of `length` cells and must reach the last one; actions are
"left" and "right" (anything else is invalid and costs 0.1). Reward 1 on reaching the end. The
state key is the cell. Run it as an environment with

    agent: {environment: process, process: {command: [python3, scripts/environments/corridor.py, "4"]}}

Options for tests: "--crash-after N" exits with status 3 after N replies, "--garbage" answers the
first step with a line that is not JSON, "--sleep S" sleeps S seconds before each step reply,
"--double" writes each step reply twice, "--coin" ends each episode at its second action, a success
(reward 1) when that action's characters sum to an even code (so random text succeeds about half
the time); its first action earns 0.2 whatever it is, so every return is positive and only the
success flag tells the outcomes apart.
"""
import json
import sys
import time


def main():
    args = sys.argv[1:]
    length = int(args[0]) if args and args[0].isdigit() else 4
    crash_after = int(args[args.index("--crash-after") + 1]) if "--crash-after" in args else None
    garbage = "--garbage" in args
    double = "--double" in args
    coin = "--coin" in args
    sleep = float(args[args.index("--sleep") + 1]) if "--sleep" in args else 0.0
    position, replies, moves = 0, 0, 0

    def reply(obj, times=1):
        nonlocal replies
        if crash_after is not None and replies >= crash_after:
            sys.exit(3)
        # One write for all copies: with PYTHONUNBUFFERED two writes could reach the reader apart.
        sys.stdout.write((json.dumps(obj) + "\n") * times)
        sys.stdout.flush()
        replies += 1

    def view():
        return "".join("A" if i == position else ("E" if i == length - 1 else ".") for i in range(length))

    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "reset":
            position, moves = 0, 0
            reply({"observation": view(), "state": str(position),
                   "instructions": f"Walk right to the end E of the corridor. Reply with left or right."})
        elif request["op"] == "step":
            if sleep:
                time.sleep(sleep)
            if garbage:
                sys.stdout.write("this is not json\n")
                sys.stdout.flush()
                continue
            moves += 1
            if coin:
                won = moves == 2 and sum(map(ord, request["action"])) % 2 == 0
                reply({"observation": None if moves == 2 else view(), "state": str(moves), "reward": 1.0 if won else (0.2 if moves == 1 else 0.0),
                       "done": moves == 2, "valid": True, "success": won})
                continue
            action = request["action"].strip().lower().rstrip(".")
            if action not in ("left", "right"):
                reply({"observation": view(), "state": str(position), "reward": -0.1, "done": False, "valid": False})
                continue
            position = max(0, min(length - 1, position + (1 if action == "right" else -1)))
            done = position == length - 1
            answer = {"observation": None if done else view(), "state": str(position), "reward": 1.0 if done else 0.0,
                      "done": done, "valid": True, "success": done}
            reply(answer, times=2 if double else 1)
        else:
            reply({"error": f"unknown op {request['op']!r}"})


if __name__ == "__main__":
    main()
