-- Pauses the running canary at its current step until resumed.
-- Sets the one-shot gate serving.gantry.dev/pause=true; the operator acts on it once and removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.gantry.dev/pause"] = "true"
return obj
