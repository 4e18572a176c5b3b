-- Promotes the running canary to 100% now, skipping its remaining steps and analyses.
-- Sets the one-shot gate serving.gantry.dev/promote=true; the operator acts on it once and removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.gantry.dev/promote"] = "true"
return obj
