-- Resource actions of a Gantry ModelDeployment. Each one sets a one-shot annotation that the
-- operator consumes and removes (README: "Manual gates"). An action is disabled while the
-- operator would drop its gate without acting on it (operator/gantry/rollout/canary.py).

local actions = {}

local status = obj.status or {}
local canary = status.canary or {}
local spec = obj.spec or {}
local rollout = spec.rollout or {}
local steps = (rollout.canary or {}).steps

-- A canary is in flight while it steps, analyses or waits; Promoted and Aborted are over.
local inFlight = canary.phase == "Progressing" or canary.phase == "Paused"
-- Past its last step the canary is already being promoted: nothing left to skip.
local promoting = steps ~= nil and (tonumber(canary.stepIndex) or 0) >= #steps
-- Resume ends a pause, or retries an aborted canary of the same spec.
local resumable = status.phase == "Paused" or canary.phase == "Paused" or canary.phase == "Aborted"

actions["promote"] = {
  ["displayName"] = "Promote (skip remaining steps)",
  ["disabled"] = not inFlight or promoting,
}
actions["promote-step"] = {
  ["displayName"] = "Promote one step",
  ["disabled"] = not inFlight or promoting,
}
actions["abort"] = {
  ["displayName"] = "Abort canary (roll back)",
  ["disabled"] = not inFlight,
}
-- A paused canary is already paused: the operator drops a pause gate on it.
actions["pause"] = {
  ["displayName"] = "Pause canary",
  ["disabled"] = canary.phase ~= "Progressing",
}
actions["resume"] = {
  ["displayName"] = "Resume",
  ["disabled"] = not resumable,
}

return actions
