-- Argo CD health of a Gantry ModelDeployment (serving.gantry.dev/v1alpha1), read from the
-- status contract the operator writes (README: "Status contract"):
--
--   no status yet / generation not observed  -> Progressing (the operator has not looked yet)
--   Stalled=True                             -> Degraded    (a person must act)
--   phase Paused                             -> Suspended   (a canary waits: pause step,
--                                                            pause gate, inconclusive analysis)
--   Ready=True for the current generation    -> Healthy
--   anything else                            -> Progressing (the operator is working on it)
--
-- Only the base and table libraries are used, so the script runs unchanged as a built-in
-- customization and from argocd-cm without resource.customizations.useOpenLibs.

local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is set, or nil.
local function describe(c)
  if c == nil then
    return nil
  end
  local reason, message = c.reason or "", c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif reason ~= "" then
    return reason
  elseif message ~= "" then
    return message
  end
  return nil
end

-- Generations arrive as numbers (strings only from odd decoders); compare them as numbers.
local function number(v)
  if v == nil then
    return nil
  end
  return tonumber(v)
end

if obj.status == nil or next(obj.status) == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

-- The API server sets metadata.generation on every custom resource; an object without one
-- cannot show that its status is current, so it is never Healthy.
local generation = number(obj.metadata and obj.metadata.generation)
local waitingForGeneration = "Waiting for the operator to observe generation "
  .. (generation or "(unknown)")
local ready = condition("Ready")

-- A status written for an older generation describes an older spec. Checked before Stalled:
-- a spec edit is often the fix for a stall (a new model version after an aborted canary), and
-- Argo CD must not call the fix Degraded before the operator has even looked at it.
if generation == nil or number(obj.status.observedGeneration) ~= generation then
  hs.status = "Progressing"
  hs.message = waitingForGeneration
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled) or "Stalled"
  return hs
end

if obj.status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(ready) or "Canary paused"
  return hs
end

if ready ~= nil and ready.status == "True" then
  -- Ready is computed per generation; a Ready=True carried over from an earlier generation
  -- (its own observedGeneration lags) does not say the current spec is rolled out.
  if number(ready.observedGeneration) == generation then
    hs.status = "Healthy"
    -- The reason is always "Ready" here; the message says what serves.
    hs.message = ready.message or ""
    if hs.message == "" then
      hs.message = "Ready"
    end
    return hs
  end
  hs.status = "Progressing"
  hs.message = waitingForGeneration
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready) or describe(condition("Reconciling")) or "Waiting for the operator"
return hs
