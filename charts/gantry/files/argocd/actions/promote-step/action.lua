-- Moves the running canary past its current step (a pause, an analysis, a weight).
-- Sets the one-shot gate serving.gantry.dev/promote=step; the operator acts on it once and removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.gantry.dev/promote"] = "step"
return obj
