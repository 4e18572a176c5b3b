-- Resumes a paused canary, or retries an aborted one.
-- Sets the one-shot gate serving.gantry.dev/resume=true; the operator acts on it once and removes it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["serving.gantry.dev/resume"] = "true"
return obj
