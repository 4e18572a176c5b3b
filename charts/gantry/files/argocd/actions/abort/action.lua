-- Aborts the running canary: traffic returns to the stable, the canary is scaled away.
-- Sets the one-shot gate serving.gantry.dev/abort=true; the operator acts on it once and removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.gantry.dev/abort"] = "true"
return obj
